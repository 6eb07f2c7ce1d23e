import { byUrgency, packWindow } from "../../core/packing.ts";
import { getProfile } from "../../core/profiles.ts";
import { samplingKey, samplingOf } from "../../core/engine-codec.ts";
import type { RouteSettings } from "../../core/route-settings.ts";
import type { Component, Route } from "../../core/routes.ts";
import { addLoad, capacityOf, decideStaticBatch, demandOf, fits, noLoad, subtractLoad, type Load } from "../../core/window-policy.ts";
import { reportBatchProgress } from "../batch-progress.ts";
import { runOnGpu, waitInQueue } from "./gpu-call.ts";
import { parseJobMessage, toPackItem } from "./messages.ts";
import type { BatcherDeps, Pending, RunHandle, Settlement, WindowOptions, WindowReport } from "./types.ts";

/** How often the batcher re-reads what other batchers hold, and re-publishes its own load. */
const LEDGER_REFRESH_MS = 500;
/** How often while its own jobs wait for room: room another batcher gives up is taken soon. */
const LEDGER_REFRESH_WAITING_MS = 100;
/**
 * A job another batcher has held waiting for room this much longer than this batcher's oldest
 * goes first: this batcher starts nothing and pulls nothing until it has started. Without it, a
 * batcher whose copy frees takes the room again at once (it knows first), and the jobs another
 * invocation was delivered wait until their window's deadline. Counted from when a batcher got
 * the job, not from its submit: a backlog's jobs all wait long in SQS, and yielding over that
 * would hand every freed slot across batchers.
 */
const YIELD_AFTER_MS = 1000;
/** A holder entry outlives its last refresh by this much before others ignore it. */
const LEDGER_TTL_MS = 30_000;
/** After an empty receive that did not wait, wait this long before asking the queue again. */
const EMPTY_QUEUE_BACKOFF_MS = 200;
/**
 * A top-up with nothing pending long-polls this long (a whole second: SQS takes whole seconds),
 * so a message that arrives while the copies have room starts at once instead of on the next poll.
 */
const TOP_UP_LONG_POLL_SECONDS = 1;
/** Past the top-up deadline, jobs that still found no room go back to the queue after this. */
const REQUEUE_GRACE_MS = 5_000;
/**
 * How often the batcher re-reads how many copies each component runs: autoscaling changes them.
 * DescribeInferenceComponent costs nothing; a copy that started is fed within this.
 */
const COPIES_REFRESH_MS = 2_000;
/** The longest the loop sleeps with nothing to wake it: keeps top-up and holds responsive. */
const IDLE_TICK_MS = 100;

/**
 * One route's share of a batcher invocation: keeps the route's components fed until its window,
 * and what it topped up, is done.
 */
export class RouteRun implements RunHandle {
  readonly #deps: BatcherDeps;
  readonly #route: Route;
  /** The route's components with the copies they run now (routes.yml's count until first read). */
  #components: readonly Component[];
  #copiesReadAt = Number.NEGATIVE_INFINITY;
  readonly #settings: RouteSettings;
  readonly #options: WindowOptions;
  readonly #holder: string;
  #pending: Pending[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #own = new Map<string, Load>();
  #others = new Map<string, Load>();
  /** When another batcher got the oldest job it holds waiting for room on the route's components. */
  #othersOldestWaitingMs: number | undefined;
  /** Whether this run's load changed since it last published it. */
  #ownChanged = false;
  #publishedWaiting = false;
  #ledgerReadAt = Number.NEGATIVE_INFINITY;
  #ledgerPublishedAt = Number.NEGATIVE_INFINITY;
  #queueEmptyUntil = Number.NEGATIVE_INFINITY;
  /** Whether the last top-up took all it asked for: more may be waiting in the queue. */
  #queueMayHaveMore = true;
  #wake = Promise.withResolvers<void>();
  /** Delivered messages to hand back to the event source mapping. */
  readonly #retry = new Set<string>();
  /** Messages whose job state is durable and whose message was dealt with. */
  readonly #settled = new Set<string>();
  readonly #gpuBatchSizes: number[] = [];
  #pulled = 0;
  readonly #touchedBatches = new Set<string>();
  /** Components that answered "not ready", and until when to leave them be. */
  readonly #warmingUntil = new Map<string, number>();
  /** When the current hold on a static batch ends; undefined while none is held. */
  #holdUntil: number | undefined;
  readonly #startedMs: number;

  constructor(deps: BatcherDeps, route: Route, settings: RouteSettings, options: WindowOptions) {
    this.#deps = deps;
    this.#route = route;
    this.#components = route.components;
    this.#settings = settings;
    this.#options = options;
    this.#holder = deps.ids.window();
    this.#startedMs = deps.clock.now().getTime();
  }

  async run(delivered: Pending[]): Promise<WindowReport> {
    this.#pending = delivered.toSorted((a, b) => byUrgency(a.item, b.item));
    try {
      for (;;) {
        // Both reads before the first start: together, so that neither delays it by its round trip.
        await Promise.all([this.#refreshLedger(), this.#refreshCopies()]);
        await this.#parkWhileWarming();
        this.#startWhatFits();
        if (this.#mayTopUp() && (await this.#topUp()) > 0) continue;
        if (this.#pending.length === 0 && this.#inFlight.size === 0) break;
        if (this.#pending.length > 0 && this.#now() >= this.#options.topUpUntil.getTime() + REQUEUE_GRACE_MS) await this.#requeuePending();
        if (this.#pending.length === 0 && this.#inFlight.size === 0) break;
        await this.#deps.sleep(IDLE_TICK_MS, this.#wake.promise);
        this.#wake = Promise.withResolvers<void>();
      }
    } finally {
      await Promise.allSettled(this.#inFlight);
      await this.#publishAll(true);
      await Promise.all([...this.#touchedBatches].map((id) => reportBatchProgress(this.#deps, id)));
    }
    return { retry: [...this.#retry], gpuBatchSizes: this.#gpuBatchSizes, pulled: this.#pulled };
  }

  #now(): number {
    return this.#deps.clock.now().getTime();
  }

  #pastTopUp(): boolean {
    return this.#now() >= this.#options.topUpUntil.getTime();
  }

  #loadOf(component: Component): Load {
    return addLoad(this.#own.get(component.name) ?? noLoad, this.#others.get(component.name) ?? noLoad);
  }

  /** The component with the least load per copy that can take its `demand`, if any. */
  #placeFor(demandOn: (component: Component) => Load): Component | undefined {
    let best: Component | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const component of this.#components) {
      if ((this.#warmingUntil.get(component.name) ?? 0) > this.#now()) continue;
      if (component.copies === 0 && this.#components.some((c) => c.copies > 0)) continue;
      const load = this.#loadOf(component);
      if (!fits(capacityOf(component, this.#settings), load, demandOn(component))) continue;
      const perCopy = load.sequences / Math.max(1, component.copies);
      if (perCopy < bestLoad) {
        best = component;
        bestLoad = perCopy;
      }
    }
    return best;
  }

  /** When this run got its oldest job still waiting to start. */
  #oldestWaitingMs(): number | undefined {
    return this.#pending.length === 0 ? undefined : Math.min(...this.#pending.map((p) => p.receivedMs));
  }

  /** Whether another batcher's job has waited long enough for room that it must start first. */
  #yielding(): boolean {
    const theirs = this.#othersOldestWaitingMs;
    return theirs !== undefined && theirs < (this.#oldestWaitingMs() ?? this.#now()) - YIELD_AFTER_MS;
  }

  #startWhatFits(): void {
    if (this.#yielding()) return;
    const dynamic = this.#components.some((c) => c.engine === "lmi-dynamic");
    if (dynamic) this.#startStaticBatches();
    else this.#startRolling();
  }

  /**
   * Rolling batch: one call per job, each as soon as a copy has room for it, most urgent first.
   * The jobs started in one pass reach the engine together: they are one window.
   */
  #startRolling(): void {
    const started: { component: Component; pending: Pending }[] = [];
    while (this.#pending.length > 0) {
      const next = this.#pending[0] as Pending;
      const component = this.#placeFor((c) => demandOf(next.item, c.kv_admission));
      if (!component) break;
      this.#pending.shift();
      this.#reserve(component, demandOf(next.item, component.kv_admission));
      started.push({ component, pending: next });
    }
    if (started.length === 0) return;
    const window = { window_id: this.#deps.ids.window(), window_size: started.length };
    for (const { component, pending } of started) this.#launch(component, [pending], demandOf(pending.item, component.kv_admission), window);
  }

  /** Dynamic batch: a copy runs one batch at a time, so a batch takes a whole copy's room. */
  #startStaticBatches(): void {
    while (this.#pending.length > 0) {
      const component = this.#placeFor((c) => capacityOf({ ...c, copies: 1 }, this.#settings));
      if (!component) return;
      const group = this.#firstSamplingGroup();
      const profile = getProfile(component.profile);
      const packs = packWindow(group.map((p) => p.item), { limits: component.limits, profile, oneRequestPerBatch: true });
      const batch = packs[0] ?? [];
      const full = packs.length > 1 || batch.length >= component.limits.max_sequences;
      // A copy that just freed sizes its next batch on what waits in the queue too, not only on
      // what this run held while the copy was busy.
      if (!full && this.#queueMayHaveMore && this.#mayTopUp()) return;
      const now = this.#now();
      if (!full) {
        if (this.#holdUntil === undefined) {
          const decision = decideStaticBatch({ batch, full, nowMs: now, arrivalsPerMs: this.#arrivalsPerMs(), profile, settings: this.#settings });
          if (decision.kind === "wait") {
            this.#holdUntil = now + decision.forMs;
            return;
          }
        } else if (now < this.#holdUntil) {
          return;
        }
      }
      this.#holdUntil = undefined;
      this.#queueMayHaveMore = true;
      const ids = new Set(batch.map((i) => i.id));
      const members = this.#pending.filter((p) => ids.has(p.item.id));
      this.#pending = this.#pending.filter((p) => !ids.has(p.item.id));
      this.#gpuBatchSizes.push(members.length);
      const demand = capacityOf({ ...component, copies: 1 }, this.#settings);
      this.#reserve(component, demand);
      this.#launch(component, members, demand, { window_id: this.#deps.ids.window(), window_size: members.length });
    }
  }

  /** The pending jobs that share the most urgent job's sampling parameters. */
  #firstSamplingGroup(): Pending[] {
    const first = this.#pending[0];
    if (!first) return [];
    const key = samplingKey(samplingOf(first.message.request));
    return this.#pending.filter((p) => samplingKey(samplingOf(p.message.request)) === key);
  }

  /** Jobs per ms this run has taken in: the arrival rate a hold can count on. */
  #arrivalsPerMs(): number {
    const elapsed = Math.max(1, this.#now() - this.#startedMs);
    return this.#pulled / elapsed;
  }

  #reserve(component: Component, load: Load): void {
    this.#own.set(component.name, addLoad(this.#own.get(component.name) ?? noLoad, load));
    this.#ownChanged = true;
  }

  /** Runs a call whose load is already reserved, and gives the load back once the copy answers. */
  #launch(component: Component, members: readonly Pending[], load: Load, window: { window_id: string; window_size: number }): void {
    let reserved = true;
    const giveBack = () => {
      if (!reserved) return;
      reserved = false;
      this.#own.set(component.name, subtractLoad(this.#own.get(component.name) ?? noLoad, load));
      this.#ownChanged = true;
      this.#wake.resolve();
    };
    const task = runOnGpu(this.#deps, { placement: { ...window, component: component.name }, component, tokenizer: this.#route.tokenizer, members, gpuDone: giveBack }, this)
      .catch((error: unknown) => {
        // A store or queue that failed mid-way: whatever was not settled goes back to SQS as it
        // is (not deleted), to be delivered again once its visibility timeout passes.
        this.#deps.logger.error("window task failed; its unsettled messages will be delivered again", { error: String(error) });
        for (const member of members) {
          if (!this.#settled.has(member.source.messageId) && member.source.kind === "delivered") this.#retry.add(member.source.messageId);
        }
      })
      .finally(() => {
        giveBack();
        this.#inFlight.delete(task);
        this.#wake.resolve();
      });
    this.#inFlight.add(task);
  }

  /** Sequences the route's components can still take, over all holders. */
  #freeSequences(): number {
    return this.#components.reduce((sum, c) => sum + Math.max(0, capacityOf(c, this.#settings).sequences - this.#loadOf(c).sequences), 0);
  }

  #mayTopUp(): boolean {
    if (!this.#settings.top_up || this.#pastTopUp() || this.#now() < this.#queueEmptyUntil || this.#yielding()) return false;
    return this.#freeSequences() > this.#pending.length;
  }

  async #topUp(): Promise<number> {
    const room = this.#freeSequences();
    // Only with nothing pending: a long poll would keep pending jobs from the room that frees meanwhile.
    const mayWait = this.#pending.length === 0 && this.#options.topUpUntil.getTime() - this.#now() >= TOP_UP_LONG_POLL_SECONDS * 1000;
    const waitSeconds = mayWait ? TOP_UP_LONG_POLL_SECONDS : 0;
    const asked = Math.min(10, room - this.#pending.length);
    const received = await this.#deps.queue.receive(this.#route.name, asked, waitSeconds);
    this.#queueMayHaveMore = received.length === asked;
    if (received.length === 0) {
      if (waitSeconds === 0) this.#queueEmptyUntil = this.#now() + EMPTY_QUEUE_BACKOFF_MS;
      return 0;
    }
    this.#pulled += received.length;
    for (const m of received) {
      const message = parseJobMessage(m.body);
      if (!message || message.model !== this.#route.name) {
        this.#deps.logger.error("not a job message of this route; leaving it for the DLQ", { messageId: m.messageId });
        await this.#deps.queue.release(this.#route.name, m.receiptHandle, 0);
        continue;
      }
      this.#pending.push({ source: { kind: "pulled", ...m }, message, item: toPackItem(message, this.#route.tokenizer), receivedMs: this.#now() });
    }
    this.#pending.sort((a, b) => byUrgency(a.item, b.item));
    return received.length;
  }

  /** Work that could not start in time goes back as new messages: not a failed delivery. */
  async #requeuePending(): Promise<void> {
    const waiting = this.#pending;
    this.#pending = [];
    await Promise.all(waiting.map((p) => this.#deps.queue.requeue(this.#route.name, p.source, 0)));
  }

  async #refreshLedger(): Promise<void> {
    const now = this.#now();
    const waiting = this.#pending.length > 0;
    if (now - this.#ledgerReadAt >= (waiting ? LEDGER_REFRESH_WAITING_MS : LEDGER_REFRESH_MS)) {
      this.#ledgerReadAt = now;
      const others = await Promise.all(this.#components.map((c) => this.#deps.ledger.others(c.name, this.#holder, new Date(now))));
      this.#others = new Map(this.#components.map((c, i) => [c.name, others[i]?.load ?? noLoad]));
      const oldest = Math.min(...others.map((o) => o.oldestWaitingMs ?? Number.POSITIVE_INFINITY));
      this.#othersOldestWaitingMs = Number.isFinite(oldest) ? oldest : undefined;
    }
    // Published at once: that this run's jobs started waiting, and, while it yields, the room it gives back.
    const due = now - this.#ledgerPublishedAt >= LEDGER_REFRESH_MS || waiting !== this.#publishedWaiting;
    if (due || (this.#yielding() && this.#ownChanged)) await this.#publishAll(false);
  }


  async #publishAll(final: boolean): Promise<void> {
    const now = this.#now();
    this.#ledgerPublishedAt = now;
    this.#ownChanged = false;
    const oldestWaitingMs = final ? undefined : this.#oldestWaitingMs();
    this.#publishedWaiting = oldestWaitingMs !== undefined;
    await Promise.all(
      this.#components.map((c) =>
        this.#deps.ledger.publish(c.name, this.#holder, { load: final ? noLoad : (this.#own.get(c.name) ?? noLoad), oldestWaitingMs }, new Date(now + LEDGER_TTL_MS)),
      ),
    );
  }

  /** How a job's message is settled once its state is durable. */
  async settle(pending: Pending, outcome: Settlement): Promise<void> {
    const { source } = pending;
    if (outcome.kind === "requeue") {
      // A new message for later; the original is done (deleted now, or by the event source mapping).
      await this.#deps.queue.requeue(this.#route.name, source, outcome.delaySeconds);
    } else if (outcome.kind === "retry") {
      // Reported before the release: a release that fails must still not count as a success.
      if (source.kind === "delivered") this.#retry.add(source.messageId);
      await this.#deps.queue.release(this.#route.name, source.receiptHandle, outcome.delaySeconds);
    } else if (source.kind === "pulled") {
      await this.#deps.queue.delete(this.#route.name, source.receiptHandle);
    }
    this.#settled.add(source.messageId);
  }

  get warmingRecheckSeconds(): number {
    return this.#settings.warming_recheck_seconds;
  }

  componentWarming(component: Component): void {
    this.#warmingUntil.set(component.name, this.#now() + this.#settings.warming_recheck_seconds * 1000);
    this.#wake.resolve();
  }

  /**
   * Re-reads the copies each component runs. A component whose autoscaling is starting its first
   * copy is warming: its jobs wait in the queue rather than fail. One at zero that nobody woke is
   * still sent a job: its "no capacity" answer is what raises the alarm that wakes it.
   */
  async #refreshCopies(): Promise<void> {
    const now = this.#now();
    if (now - this.#copiesReadAt < COPIES_REFRESH_MS) return;
    this.#copiesReadAt = now;
    this.#components = await Promise.all(
      this.#components.map(async (component) => {
        try {
          const { current, desired } = await this.#deps.fleet.copies(component);
          if (current === 0 && desired > 0) this.componentWarming(component);
          // A copy serves: whatever said "warming" before no longer holds, and the copy is fed now.
          else if (current > 0) this.#warmingUntil.delete(component.name);
          return current === component.copies ? component : { ...component, copies: current };
        } catch (error) {
          this.#deps.logger.warn("could not read the component's copies; keeping the last count", { component: component.name, error: String(error) });
          return component;
        }
      }),
    );
  }

  /** While every component of the route is warming, waiting jobs go back to the queue, saying why. */
  async #parkWhileWarming(): Promise<void> {
    const now = this.#now();
    const until = Math.min(...this.#components.map((c) => this.#warmingUntil.get(c.name) ?? 0));
    if (until <= now || this.#pending.length === 0) return;
    const waiting = this.#pending;
    this.#pending = [];
    const decision = { delaySeconds: Math.ceil((until - now) / 1000), reason: "warming" };
    await Promise.all(waiting.map((p) => waitInQueue(this.#deps, p, decision, this)));
  }

  touched(batchId: string): void {
    this.#touchedBatches.add(batchId);
  }
}

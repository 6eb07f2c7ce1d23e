import { batchLaneCapped, decideNext, EMPTY_LANE_BACKOFF_MS, IDLE_TICK_MS, REQUEUE_GRACE_MS, interactiveWorkNow, isYielding, oldestWaitingMs, topUpDeadline, type BatcherSnapshot, type BatcherStep, type LaneQueueState, type WaitingJob } from "../../core/batcher-decision.ts";
import { stopsWhenCallerLeaves } from "../../core/client-abort.ts";
import { samplingKey, samplingOf } from "../../core/engine-codec.ts";
import type { Lane } from "../../core/lanes.ts";
import { byUrgency, type PackItem } from "../../core/packing.ts";
import type { RouteSettings } from "../../core/route-settings.ts";
import type { Component, Route } from "../../core/routes.ts";
import { capacityOf, demandOn, kvTokensOf, type Load } from "../../core/gpu-batch-policy.ts";
import { CostMeter } from "./cost-meter.ts";
import { DriftSync, type RollingMeasure } from "./drift-sync.ts";
import { FleetSync } from "./fleet-sync.ts";
import { runOnGpu } from "./gpu-call.ts";
import { HoldSync } from "./hold-sync.ts";
import { waitInQueue } from "./job-endings.ts";
import { LedgerSync } from "./ledger-sync.ts";
import { PacedBatchProgress } from "./paced-progress.ts";
import { Settlements } from "./settlement.ts";
import { QueueReporter, serviceStateOf, type ServiceState } from "./queue-report.ts";
import { pullFromQueue } from "./top-up.ts";
import type { BatcherDeps, DeliveryOptions, DeliveryReport, Pending, RunHandle, Settlement } from "./types.ts";


/**
 * One route's share of a batcher invocation: keeps the route's components fed until the jobs it
 * was delivered, and those it topped up, are done. What to do next is `decideNext`'s call; this
 * class only keeps the state it reads and carries its steps out.
 */
export class RouteRun implements RunHandle {
  readonly #deps: BatcherDeps;
  readonly #route: Route;
  readonly #settings: RouteSettings;
  readonly #topUpUntilMs: number;
  readonly #topUpLatestMs: number;
  readonly #startedMs: number;
  /** Dynamic-batch engines: one static GPU batch per copy at a time. */
  readonly #staticBatching: boolean;
  readonly #ledger: LedgerSync;
  readonly #fleet: FleetSync;
  readonly #settlements: Settlements;
  readonly #queueReport: QueueReporter;
  /** The static-batch hold's measured inputs: the route's arrival rate and the copies' latency factor. */
  readonly #hold: HoldSync;
  /** The components' drift from their profiles: what packing, admission and the ETAs plan with. */
  readonly #drift: DriftSync;
  #waiting: Pending[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  /** Running calls that a cancel may abort, by their one job: stop() aborts the call and frees its room. */
  readonly #abortable = new Map<string, { readonly component: string; stop(): void }>();
  /** Ledger writes no step waits for (clearing cancel marks), awaited before the run ends. */
  readonly #chores = new Set<Promise<void>>();
  #wake = Promise.withResolvers<void>();
  readonly #queues: Record<Lane, { -readonly [K in keyof LaneQueueState]: LaneQueueState[K] }> = {
    interactive: { emptyUntilMs: Number.NEGATIVE_INFINITY, mayHaveMore: true, answeredEmpty: false },
    batch: { emptyUntilMs: Number.NEGATIVE_INFINITY, mayHaveMore: true, answeredEmpty: false },
  };
  readonly #pulledByLane: Record<Lane, number> = { interactive: 0, batch: 0 };
  #holdUntilMs: number | undefined;
  /** When a snapshot last showed interactive work on the route's components: the batch lane's cap remembers it a while (published in the ledger). */
  #interactiveSeenMs: number | undefined;
  #longPolledSinceIdle = false;
  /** A long poll of the interactive lane runs beside the loop (the watch step). */
  #interactiveWatching = false;
  readonly #gpuBatchSizes: number[] = [];
  readonly costs = new CostMeter();
  /** The batch.progress events of the batches whose lines this run ends: paced, and a last one at the run's end. */
  readonly #progress: PacedBatchProgress;

  constructor(deps: BatcherDeps, route: Route, settings: RouteSettings, options: DeliveryOptions) {
    this.#deps = deps;
    this.#route = route;
    this.#settings = settings;
    this.#topUpUntilMs = options.topUpUntil.getTime();
    this.#topUpLatestMs = Math.max(this.#topUpUntilMs, options.topUpLatest?.getTime() ?? this.#topUpUntilMs);
    this.#startedMs = this.#now();
    this.#staticBatching = route.components.some((c) => c.engine === "lmi-dynamic");
    this.#ledger = new LedgerSync(deps.ledger, deps.ids.holder(), route.components.map((c) => c.name));
    this.#fleet = new FleetSync(deps, route.components, settings.warming_recheck_seconds * 1000);
    this.#settlements = new Settlements(deps.queue, route.name);
    this.#hold = new HoldSync(deps, route.name, this.#staticBatching && settings.measured_hold);
    this.#drift = new DriftSync(deps);
    this.#progress = new PacedBatchProgress(deps);
    this.#queueReport = new QueueReporter(deps, route.name, (board) => this.#hold.noteBoard(board, this.#now()));
  }

  async run(delivered: readonly Pending[]): Promise<DeliveryReport> {
    this.#waiting = delivered.toSorted(byLaneThenUrgency);
    // The route's board only once, with the first reads: later ones come back with the reports.
    const boardRead = this.#hold.readBoard(() => this.#now());
    try {
      for (;;) {
        // The reads before the first start: together, so that none delays it by its round trip.
        await Promise.all([this.#refreshLedger(), this.#fleet.refresh(this.#now()), boardRead]);
        this.#chore(this.#queueReport.maybeReport(this.#now(), () => this.#serviceState()));
        const next = await this.#carryOutUntilWaiting();
        if (next === "done") break;
        if (next === "wait") await this.#idle();
      }
    } finally {
      await Promise.allSettled(this.#inFlight);
      await Promise.allSettled(this.#chores);
      await Promise.all([this.#ledger.publish(this.#now(), undefined, true), this.#queueReport.finish(() => this.#serviceState()), this.#drift.store(this.#now(), true)]);
      await this.#progress.end();
    }
    return { retry: this.#settlements.retry, gpuBatchSizes: this.#gpuBatchSizes, pulled: this.#pulled(), pulledByLane: { ...this.#pulledByLane } };
  }

  /** Carries out steps until one waits or ends; "resync" when the state outside may have moved. */
  async #carryOutUntilWaiting(): Promise<"wait" | "done" | "resync"> {
    for (;;) {
      const snapshot = this.snapshot();
      const step = decideNext(snapshot);
      switch (step.kind) {
        case "start": {
          const capped = batchLaneCapped(snapshot);
          this.#start(step.calls, capped);
          // Batch-lane starts under the cap are told before the next decision, not at the next
          // loop's refresh: that one reads before it publishes, so batchers refreshing together
          // would each read the other's load from before its starts.
          if (capped) await this.#refreshLedger();
          break;
        }
        case "hold":
          this.#holdUntilMs = step.untilMs;
          break;
        case "top-up":
          if ((await this.#topUp(step)) > 0) return "resync";
          break;
        case "watch":
          this.#watch(step);
          break;
        case "requeue":
          await this.#putBack(step);
          break;
        case "yield":
        case "drain":
          return "wait";
        case "done":
          return "done";
      }
    }
  }

  /** What `decideNext` sees now; notes when it shows interactive work, for the batch lane's cap. */
  snapshot(): BatcherSnapshot {
    const nowMs = this.#now();
    const seen: BatcherSnapshot = {
      nowMs,
      settings: this.#settings,
      components: this.#fleet.components.map((component) => ({
        component: this.#drift.corrected(component),
        held: this.#ledger.heldOn(component.name),
        interactiveHeld: this.#ledger.interactiveHeldOn(component.name),
        warmingUntilMs: this.#fleet.warmingUntilMs(component.name),
        batchRoomShare: this.#ledger.batchRoomShare(component.name),
      })),
      waiting: this.#waiting.map(waitingJobOf),
      callsInFlight: this.#inFlight.size,
      othersOldestWaitingMs: this.#ledger.othersOldestWaitingMs,
      othersInteractiveWaiting: this.#ledger.othersInteractiveWaiting,
      topUpUntilMs: this.#topUpUntilMs,
      topUpLatestMs: this.#topUpLatestMs,
      othersTopUpUntilMs: this.#ledger.othersTopUpUntilMs,
      queues: { interactive: { ...this.#queues.interactive }, batch: { ...this.#queues.batch } },
      longPolledSinceIdle: this.#longPolledSinceIdle,
      interactiveWatching: this.#interactiveWatching,
      receivedByLane: { ...this.#pulledByLane },
      holdUntilMs: this.#holdUntilMs,
      ...this.#hold.inputs(nowMs, this.#pulled(), this.#startedMs),
      interactiveSeenMs: latest(this.#interactiveSeenMs, this.#ledger.othersInteractiveSeenMs),
    };
    if (!interactiveWorkNow(seen)) return seen;
    this.#interactiveSeenMs = nowMs;
    this.#ledger.interactiveSeenMs = nowMs;
    return { ...seen, interactiveSeenMs: nowMs };
  }

  /** Messages this run took from the queues itself. */
  #pulled(): number {
    return this.#pulledByLane.interactive + this.#pulledByLane.batch;
  }

  #now(): number {
    return this.#deps.clock.now().getTime();
  }

  async #idle(): Promise<void> {
    await this.#deps.sleep(IDLE_TICK_MS, this.#wake.promise);
    this.#wake = Promise.withResolvers<void>();
    this.#queues.interactive.answeredEmpty = false;
    this.#queues.batch.answeredEmpty = false;
    this.#longPolledSinceIdle = false;
  }

  async #refreshLedger(): Promise<void> {
    const waiting = this.#waiting.map(waitingJobOf);
    const oldest = oldestWaitingMs(waiting);
    const interactive = waiting.some((w) => w.lane === "interactive");
    // Asked after the read: the others' figures are the ones it brought.
    const yielding = () =>
      isYielding({ othersOldestWaitingMs: this.#ledger.othersOldestWaitingMs, othersInteractiveWaiting: this.#ledger.othersInteractiveWaiting, waiting, nowMs: this.#now() });
    const deadline = topUpDeadline({ nowMs: this.#now(), topUpUntilMs: this.#topUpUntilMs, topUpLatestMs: this.#topUpLatestMs, othersTopUpUntilMs: this.#ledger.othersTopUpUntilMs });
    await this.#ledger.refresh(this.#now(), oldest, interactive, yielding, deadline);
    for (const component of this.#fleet.components) {
      this.costs.othersRead(component.name, this.#ledger.othersOn(component.name).sequences, this.#now());
      this.#drift.adopt(component.name, this.#ledger.storedDrift(component.name));
      this.#drift.noteLoad(component, this.#ledger.heldOn(component.name), this.#now());
    }
    this.#hold.noteShared((component) => this.#overfull(component));
    this.#chore(this.#drift.store(this.#now(), false));
    this.#abortCancelled();
  }

  /**
   * Aborts the calls of jobs cancelled since the last read: the engine drops their sequences, so
   * their room is free now, before the call's own rejection comes back. The mark is cleared so
   * that the batchers' reads stop carrying it.
   */
  #abortCancelled(): void {
    for (const jobId of this.#ledger.cancelled) {
      const call = this.#abortable.get(jobId);
      if (!call) continue;
      this.#abortable.delete(jobId);
      call.stop();
      this.#chore(
        this.#deps.ledger.clearCancelled(call.component, jobId).catch((error: unknown) => {
          this.#deps.logger.warn("could not clear a cancel mark; it expires on its own", { jobId, error: String(error) });
        }),
      );
    }
  }

  /** A write no step waits for; the run awaits it before it ends. It must not reject. */
  #chore(task: Promise<void> | undefined): void {
    if (!task) return;
    this.#chores.add(task);
    void task.then(() => this.#chores.delete(task));
  }

  /** Whether every batcher together holds more on the component than its copies run at once: static batches crossed. */
  #overfull(component: Component): boolean {
    return this.#ledger.heldOn(component.name).sequences > capacityOf(component, this.#settings).sequences;
  }

  #serviceState(): ServiceState {
    const latency = this.#hold.toReport();
    const [first] = this.#route.components;
    const state = serviceStateOf({
      nowMs: this.#now(),
      components: this.#fleet.components.map((c) => this.#drift.corrected(c)),
      settings: this.#settings,
      heldOn: (component) => this.#ledger.heldOn(component),
      jobsWaitingForRoom: this.#waiting.length > 0 || this.#ledger.othersOldestWaitingMs !== undefined,
      profileFactors: first && this.#drift.correction(first.name),
    });
    return latency ? { ...state, latency } : state;
  }

  /** Starts the planned calls as one GPU batch: they reach the engines together. */
  #start(calls: Extract<BatcherStep, { kind: "start" }>["calls"], capped: boolean): void {
    const byId = new Map(this.#waiting.map((p) => [p.item.id, p]));
    const started = calls.map((call) => ({ call, members: call.jobIds.map((id) => byId.get(id)).filter((p) => p !== undefined) }));
    const startedIds = new Set(calls.flatMap((c) => c.jobIds));
    this.#waiting = this.#waiting.filter((p) => !startedIds.has(p.item.id));
    const componentNamed = (name: string) => this.#fleet.components.find((c) => c.name === name);
    const kvTokensOn = (name: string, members: readonly Pending[]) => {
      const named = componentNamed(name);
      const component = named && this.#drift.corrected(named);
      return component ? members.reduce((sum, p) => sum + demandOn(p.item, component).tokens, 0) : kvTokensOf(members.map((p) => p.item));
    };
    const kvTokens = started.reduce((sum, { call, members }) => sum + kvTokensOn(call.component, members), 0);
    const gpuBatch = { gpu_batch_id: this.#deps.ids.gpuBatch(), gpu_batch_size: startedIds.size, kvTokens };
    if (this.#staticBatching) {
      this.#holdUntilMs = undefined;
      this.#queues.interactive.mayHaveMore = true;
      this.#queues.batch.mayHaveMore = true;
      this.#gpuBatchSizes.push(startedIds.size);
    }
    for (const { call, members } of started) {
      const component = this.#fleet.components.find((c) => c.name === call.component);
      if (component) this.#launch(component, members, call.load, gpuBatch, capped);
    }
  }

  /** Runs a call, holding its load in the ledger until the copy answers or a cancel aborts the call. */
  #launch(component: Component, members: readonly Pending[], load: Load, gpuBatch: { gpu_batch_id: string; gpu_batch_size: number; kvTokens: number }, capped: boolean): void {
    // A static batch may mix the lanes: one interactive job makes its whole load interactive.
    const lane: Lane = members.some((p) => p.source.lane === "interactive") ? "interactive" : "batch";
    this.#ledger.reserve(component.name, load, lane, capped && lane === "batch");
    this.#drift.noteLoad(component, this.#ledger.heldOn(component.name), this.#now());
    let reserved = true;
    const giveBack = () => {
      if (!reserved) return;
      reserved = false;
      this.#ledger.release(component.name, load, lane);
      this.#drift.noteLoad(component, this.#ledger.heldOn(component.name), this.#now());
      this.#wake.resolve();
    };
    // One job per call only: aborting a static batch's call would stop every other prompt in it.
    const [only] = members;
    const controller = members.length === 1 && stopsWhenCallerLeaves(component.engine) ? new AbortController() : undefined;
    const stop = () => {
      controller?.abort();
      giveBack();
    };
    const abortable = controller && { component: component.name, stop };
    if (only && abortable) this.#abortable.set(only.item.id, abortable);
    const { kvTokens, ...batch } = gpuBatch;
    const timing = this.#staticBatching ? this.#hold.beginCall(component, this.#overfull(component)) : undefined;
    const timed = timing && ((measuredMs: number, jobs: readonly PackItem[], generated: readonly number[]) => {
      const sample = this.#hold.noteBatch(timing, measuredMs, jobs, generated, this.#now());
      if (sample) this.#drift.noteStatic(component.name, sample, this.#now());
    });
    const rolling = !this.#staticBatching && members.length === 1 ? this.#drift.beginRolling(component, this.#ledger.heldOn(component.name), this.#now()) : undefined;
    const observed = rolling && ((measure: RollingMeasure) => this.#drift.endRolling(rolling, measure));
    // The call plans (a long job's tokens a call) on the corrected profile; its timings are against the profile itself.
    const planned = this.#drift.corrected(component);
    const call = { placement: { ...batch, component: component.name }, kvTokens, component: planned, chatTemplate: this.#route.chat_template, members, gpuDone: giveBack, signal: controller?.signal, timed, observed };
    const task = runOnGpu(this.#deps, call, this)
      .catch((error: unknown) => {
        this.#deps.logger.error("GPU call task failed; its unsettled messages will be delivered again", { error: String(error) });
        this.#settlements.handBackUnsettled(members);
      })
      .finally(() => {
        if (timing) this.#hold.endCall(timing);
        giveBack();
        if (only && this.#abortable.get(only.item.id) === abortable) this.#abortable.delete(only.item.id);
        this.#inFlight.delete(task);
        this.#wake.resolve();
      });
    this.#inFlight.add(task);
  }

  async #topUp(request: { readonly lane: Lane; readonly max: number; readonly waitSeconds: number }, watched = false): Promise<number> {
    if (request.waitSeconds > 0 && !watched) this.#longPolledSinceIdle = true;
    const { received, jobs } = await pullFromQueue(this.#deps, this.#route, request, () => this.#now());
    const queue = this.#queues[request.lane];
    queue.mayHaveMore = received === request.max;
    this.#queueReport.laneSeen(request.lane, received === 0 && !this.#waiting.some((p) => p.source.lane === request.lane));
    if (received === 0) {
      queue.answeredEmpty = true;
      // A watch that came back empty is followed by another, not by looks in between.
      if (request.waitSeconds === 0 || watched) queue.emptyUntilMs = this.#now() + EMPTY_LANE_BACKOFF_MS[request.lane];
      return 0;
    }
    this.#pulledByLane[request.lane] += received;
    this.#waiting = [...this.#waiting, ...jobs].sort(byLaneThenUrgency);
    return received;
  }

  /** The watch step: its jobs join the waiting ones and wake the loop, which does not end while it runs (decideNext). */
  #watch(request: Extract<BatcherStep, { kind: "watch" }>): void {
    this.#interactiveWatching = true;
    const watching = this.#topUp(request, true).then(
      () => undefined,
      (error: unknown) => this.#deps.logger.warn("a watch of the interactive lane failed; the loop asks the lane again", { error: String(error) }),
    );
    this.#chore(
      watching.then(() => {
        this.#interactiveWatching = false;
        this.#wake.resolve();
      }),
    );
  }

  async #putBack(step: Extract<BatcherStep, { kind: "requeue" }>): Promise<void> {
    const waiting = this.#waiting;
    this.#waiting = [];
    if (step.reason === "late") return this.#settlements.requeueAll(waiting);
    const wait = { delaySeconds: step.delaySeconds, waitingFor: this.#route.components.map((c) => c.name).join(", ") };
    await Promise.all(waiting.map((p) => waitInQueue(this.#deps, p, wait, this)));
  }

  settle(pending: Pending, outcome: Settlement): Promise<void> {
    return this.#settlements.settle(pending, outcome);
  }

  get warmingRecheckSeconds(): number {
    return this.#settings.warming_recheck_seconds;
  }

  get maxWarmingWaitSeconds(): number {
    return this.#settings.max_warming_wait_seconds;
  }

  /** A job held after the top-up may still start this long after it: the finish reserve is sized for one call from then. */
  get lastCallStartMs(): number {
    return this.#topUpLatestMs + REQUEUE_GRACE_MS;
  }

  componentWarming(component: Component): void {
    this.#fleet.markWarming(component.name, this.#now());
    this.#wake.resolve();
  }

  touched(batchId: string): void {
    this.#progress.changed(batchId);
  }

  departed(lane: Lane): void {
    this.#queueReport.departed(lane);
  }
}

/** The later of two instants, either unknown. */
function latest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/** Each job as `decideNext` sees it, built once: the loop asks for it on every step. */
const waitingJobs = new WeakMap<Pending, WaitingJob>();
function waitingJobOf(p: Pending): WaitingJob {
  let job = waitingJobs.get(p);
  if (!job) {
    job = { item: p.item, samplingKey: samplingKey(samplingOf(p.message.request)), receivedMs: p.receivedMs, lane: p.source.lane };
    waitingJobs.set(p, job);
  }
  return job;
}

/** The interactive lane's jobs first, then by urgency: a batch file's jobs may share a priority with them. */
function byLaneThenUrgency(a: Pending, b: Pending): number {
  return (a.source.lane === b.source.lane ? 0 : a.source.lane === "interactive" ? -1 : 1) || byUrgency(a.item, b.item);
}

import {
  decideNext, EMPTY_LANE_BACKOFF_MS, IDLE_TICK_MS, interactiveWorkNow, oldestWaitingMs, topUpDeadline,
  type BatcherSnapshot, type BatcherStep, type LaneQueueState, type WaitingJob,
} from "../core/batcher-decision.ts";
import type { Load } from "../core/gpu-batch-policy.ts";
import { LANES, type Lane } from "../core/lanes.ts";
import { byUrgency } from "../core/packing.ts";
import { DEFAULT_PRIORITY } from "../core/submission.ts";
import type { SimComponent, SimCpu, SimJob, SimLedger, SimOutcome, SimQueue, SimSetup } from "./world.ts";
import type { VirtualClock } from "./virtual-clock.ts";

/** Every simulated job has the same sampling parameters: one static batch may take them all. */
const SAMPLING_KEY = "default";

export type SimBatcherWorld = {
  readonly clock: VirtualClock;
  readonly setup: SimSetup;
  readonly queues: Readonly<Record<Lane, SimQueue>>;
  readonly ledger: SimLedger;
  readonly components: ReadonlyMap<string, SimComponent>;
  readonly outcomes: ReadonlyMap<string, SimOutcome>;
  readonly cpu: SimCpu;
};

/**
 * One batcher invocation on the virtual clock: the state RouteRun keeps (shared/app/batcher/
 * route-run.ts), its steps decided by the same `decideNext`, carried out against the simulated
 * queues, ledger and copies. Each I/O the real one awaits costs its `Overheads` in virtual time.
 */
export class SimBatcher {
  readonly #world: SimBatcherWorld;
  readonly #startedMs: number;
  readonly #topUpUntilMs: number;
  readonly #topUpLatestMs: number;
  readonly #onEnd: () => void;
  #waiting: WaitingJob[] = [];
  #inFlight = 0;
  readonly #queues: Record<Lane, { -readonly [K in keyof LaneQueueState]: LaneQueueState[K] }> = {
    interactive: { emptyUntilMs: Number.NEGATIVE_INFINITY, mayHaveMore: true, answeredEmpty: false },
    batch: { emptyUntilMs: Number.NEGATIVE_INFINITY, mayHaveMore: true, answeredEmpty: false },
  };
  readonly #pulledByLane: Record<Lane, number> = { interactive: 0, batch: 0 };
  #holdUntilMs: number | undefined;
  #interactiveSeenMs: number | undefined;
  #longPolledSinceIdle = false;
  #interactiveWatching = false;
  /** A wake-up is pending: the loop runs once when it comes. */
  #asleep: (() => void) | undefined;
  #ended = false;

  constructor(world: SimBatcherWorld, delivered: readonly SimJob[], lane: Lane, onEnd: () => void) {
    this.#world = world;
    const now = world.clock.now();
    const { timing } = world.setup;
    this.#startedMs = now;
    this.#topUpUntilMs = now + Math.max(0, Math.min(timing.topUpBudgetMs, timing.timeoutMs - timing.finishReserveMs));
    this.#topUpLatestMs = Math.max(this.#topUpUntilMs, now + timing.timeoutMs - timing.finishReserveMs);
    this.#onEnd = onEnd;
    this.#waiting = delivered.map((job) => this.#waitingJob(job, lane)).sort(byLaneThenUrgency);
    this.#publish();
    this.#work(world.setup.overheads.refreshMs, () => this.#loop());
  }

  #now(): number {
    return this.#world.clock.now();
  }

  #after(ms: number, fn: () => void): void {
    this.#world.clock.setTimer(fn, ms);
  }

  /** A step of the stack's own: `ms` of CPU, on a core when one is free. */
  #work(ms: number, fn: () => void): void {
    this.#world.cpu.run(ms, fn);
  }

  #waitingJob(job: SimJob, lane: Lane): WaitingJob {
    const now = this.#now();
    const priority = lane === "interactive" ? DEFAULT_PRIORITY : 0;
    return { item: { id: job.id, promptTokens: job.promptTokens, maxNewTokens: job.maxTokens, payloadBytes: job.promptTokens * 4, priority, submittedMs: job.atMs }, samplingKey: SAMPLING_KEY, receivedMs: now, lane };
  }

  snapshot(): BatcherSnapshot {
    const nowMs = this.#now();
    const { ledger, setup } = this.#world;
    const others = ledger.others(this);
    const oldest = others.map((o) => o.oldestWaitingMs).filter((v) => v !== undefined);
    const seenByOthers = others.map((o) => o.interactiveSeenMs).filter((v) => v !== undefined);
    const pulled = this.#pulledByLane.interactive + this.#pulledByLane.batch;
    const seen: BatcherSnapshot = {
      nowMs,
      settings: setup.settings,
      components: setup.route.components.map((component) => {
        const held = ledger.heldOn(component.name);
        return { component, held: held.all, interactiveHeld: held.interactive, warmingUntilMs: 0 };
      }),
      waiting: this.#waiting,
      callsInFlight: this.#inFlight,
      othersOldestWaitingMs: oldest.length === 0 ? undefined : Math.min(...oldest),
      othersInteractiveWaiting: others.some((o) => o.interactiveWaiting),
      topUpUntilMs: this.#topUpUntilMs,
      topUpLatestMs: this.#topUpLatestMs,
      othersTopUpUntilMs: others.length === 0 ? undefined : Math.max(...others.map((o) => o.topUpUntilMs)),
      queues: { interactive: { ...this.#queues.interactive }, batch: { ...this.#queues.batch } },
      longPolledSinceIdle: this.#longPolledSinceIdle,
      interactiveWatching: this.#interactiveWatching,
      receivedByLane: { ...this.#pulledByLane },
      holdUntilMs: this.#holdUntilMs,
      arrivalsPerMs: pulled / Math.max(1, nowMs - this.#startedMs),
      interactiveSeenMs: seenByOthers.reduce<number | undefined>((a, b) => (a === undefined ? b : Math.max(a, b)), this.#interactiveSeenMs),
    };
    if (!interactiveWorkNow(seen)) return seen;
    this.#interactiveSeenMs = nowMs;
    return { ...seen, interactiveSeenMs: nowMs };
  }

  /** What the ledger's next read shows the others. */
  #publish(): void {
    const nowMs = this.#now();
    const others = this.#world.ledger.others(this);
    this.#world.ledger.holders.set(this, {
      oldestWaitingMs: oldestWaitingMs(this.#waiting),
      interactiveWaiting: this.#waiting.some((w) => w.lane === "interactive"),
      topUpUntilMs: topUpDeadline({
        nowMs, topUpUntilMs: this.#topUpUntilMs, topUpLatestMs: this.#topUpLatestMs,
        othersTopUpUntilMs: others.length === 0 ? undefined : Math.max(...others.map((o) => o.topUpUntilMs)),
      }),
      interactiveSeenMs: this.#interactiveSeenMs,
    });
  }

  /** Carries out steps until one waits, pulls or ends, as RouteRun's #carryOutUntilWaiting. */
  #loop(): void {
    this.#publish();
    for (;;) {
      const step = decideNext(this.snapshot());
      switch (step.kind) {
        case "start":
          this.#start(step.calls);
          break;
        case "hold":
          this.#holdUntilMs = step.untilMs;
          break;
        case "top-up":
          return this.#topUp(step);
        case "watch":
          this.#watch(step);
          break;
        case "requeue":
          for (const w of this.#waiting) this.#world.queues[w.lane].send(this.#jobOf(w), step.reason === "warming" ? step.delaySeconds * 1000 : 0);
          this.#waiting = [];
          break;
        case "yield":
        case "drain":
          return this.#idle();
        case "done":
          return this.#end();
      }
    }
  }

  #jobOf(w: WaitingJob): SimJob {
    const outcome = this.#world.outcomes.get(w.item.id);
    if (!outcome) throw new Error(`unknown job ${w.item.id}`);
    return outcome.job;
  }

  /** Waits for a call to finish (a wake) or the idle tick, then reads the ledger again. */
  #idle(): void {
    let woken = false;
    const wake = () => {
      if (woken) return;
      woken = true;
      this.#asleep = undefined;
      this.#queues.interactive.answeredEmpty = false;
      this.#queues.batch.answeredEmpty = false;
      this.#longPolledSinceIdle = false;
      this.#work(this.#world.setup.overheads.refreshMs, () => this.#loop());
    };
    this.#asleep = wake;
    this.#after(IDLE_TICK_MS, wake);
  }

  #wake(): void {
    this.#asleep?.();
  }

  #topUp(request: Extract<BatcherStep, { kind: "top-up" }>): void {
    if (request.waitSeconds > 0) this.#longPolledSinceIdle = true;
    this.#receive(request, false, () => this.#loop(), () => this.#work(this.#world.setup.overheads.refreshMs, () => this.#loop()));
  }

  /** The watch step, as RouteRun's: a long poll beside the loop, whose jobs join the waiting ones and wake it. */
  #watch(request: Extract<BatcherStep, { kind: "watch" }>): void {
    this.#interactiveWatching = true;
    const done = () => {
      this.#interactiveWatching = false;
      this.#wake();
    };
    this.#receive(request, true, done, done);
  }

  #receive(request: { readonly lane: Lane; readonly max: number; readonly waitSeconds: number }, watched: boolean, onEmpty: () => void, onJobs: () => void): void {
    const { overheads } = this.#world.setup;
    const queue = this.#world.queues[request.lane];
    this.#work(overheads.receiveMs, () =>
      queue.longPoll(request.max, request.waitSeconds * 1000, (jobs) => {
        const state = this.#queues[request.lane];
        state.mayHaveMore = jobs.length === request.max;
        if (jobs.length === 0) {
          state.answeredEmpty = true;
          if (request.waitSeconds === 0 || watched) state.emptyUntilMs = this.#now() + EMPTY_LANE_BACKOFF_MS[request.lane];
          return onEmpty();
        }
        this.#pulledByLane[request.lane] += jobs.length;
        this.#waiting = [...this.#waiting, ...jobs.map((job) => this.#waitingJob(job, request.lane))].sort(byLaneThenUrgency);
        onJobs();
      }),
    );
  }

  #start(calls: Extract<BatcherStep, { kind: "start" }>["calls"]): void {
    const started = new Set(calls.flatMap((c) => c.jobIds));
    const members = new Map(this.#waiting.filter((w) => started.has(w.item.id)).map((w) => [w.item.id, w]));
    this.#waiting = this.#waiting.filter((w) => !started.has(w.item.id));
    if (this.#world.setup.route.components.some((c) => c.engine === "lmi-dynamic")) {
      this.#holdUntilMs = undefined;
      for (const lane of LANES) this.#queues[lane].mayHaveMore = true;
    }
    for (const call of calls) {
      const jobs = call.jobIds.flatMap((id) => members.get(id) ?? []);
      this.#launch(call.component, jobs, call.load, started.size);
    }
  }

  #launch(componentName: string, jobs: readonly WaitingJob[], load: Load, gpuBatchSize: number): void {
    const { ledger, components, outcomes, setup, clock } = this.#world;
    const component = components.get(componentName);
    if (!component) throw new Error(`unknown component ${componentName}`);
    const lane: Lane = jobs.some((w) => w.lane === "interactive") ? "interactive" : "batch";
    ledger.reserve(componentName, load, lane, 1);
    this.#inFlight++;
    const { overheads } = setup;
    const outcomesOf = () => jobs.flatMap((w) => outcomes.get(w.item.id) ?? []);
    const claimed = () => {
      for (const outcome of outcomesOf()) {
        outcome.startedMs ??= clock.now();
        outcome.gpuBatchSize = gpuBatchSize;
      }
      this.#work(overheads.invokeMs, invoke);
    };
    const invoke = () =>
      component.run({
        sequences: jobs.map((w) => ({ promptTokens: w.item.promptTokens, newTokens: w.item.maxNewTokens, maxNewTokens: w.item.maxNewTokens })),
        onDone: () => {
          // The answer back and the result written: then the room is the ledger's again, and the client hears.
          this.#work(overheads.resultMs, () => {
            ledger.reserve(componentName, load, lane, -1);
            this.#inFlight--;
            for (const outcome of outcomesOf()) outcome.completionTokens = outcome.job.maxTokens;
            this.#work(overheads.notifyMs, () => {
              for (const outcome of outcomesOf()) outcome.finishedMs = clock.now();
            });
            this.#wake();
          });
        },
      });
    this.#work(overheads.claimMs, claimed);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#world.ledger.holders.delete(this);
    this.#onEnd();
  }
}

function byLaneThenUrgency(a: WaitingJob, b: WaitingJob): number {
  return (a.lane === b.lane ? 0 : a.lane === "interactive" ? -1 : 1) || byUrgency(a.item, b.item);
}

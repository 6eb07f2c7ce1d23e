import { addLoad, noLoad, subtractLoad, type Load } from "../core/gpu-batch-policy.ts";
import type { Lane } from "../core/lanes.ts";
import type { RouteSettings } from "../core/route-settings.ts";
import type { Component, Route } from "../core/routes.ts";
import { createCopyEngine, type CopyEngine, type CopyJob } from "./copy-engine.ts";
import type { VirtualClock } from "./virtual-clock.ts";

/**
 * What the simulated pipeline is made of besides the batchers: the lanes' queues, the capacity
 * ledger the batchers share, and the component copies (the emulator's own engine on the virtual
 * clock). Time costs of the stack around them are `Overheads`.
 */

/** One job of a trace, as the simulator sees it. */
export type SimJob = { readonly id: string; readonly atMs: number; readonly promptTokens: number; readonly maxTokens: number; readonly lane: Lane };

/** What happened to one job, ms of virtual time from the trace's start. */
export type SimOutcome = {
  readonly job: SimJob;
  /** Claimed by a batcher: the job's started_at. */
  startedMs?: number;
  /** Its final event reached the client. */
  finishedMs?: number;
  completionTokens: number;
  gpuBatchSize?: number;
};

/**
 * The stack's own time costs, ms, on top of the engine's: what a job spends outside the GPU.
 * Measured on the embedded stack: the lanes bench's idle reference (Poisson 60/min, 512 + 512,
 * seed 20261133) took submit 8, queue 44, GPU 3,437 and notify 17 ms at the median; the same
 * trace simulated spends 3,389 ms in the engine, so invoke + result ≈ 50 ms.
 */
export type Overheads = {
  /** POST /v1/jobs until the message is in its lane's queue. */
  readonly submitMs: number;
  /** A poller's receive until the batcher runs with the delivery (Lambda invoke, first ledger and fleet reads). */
  readonly deliverMs: number;
  /** One ReceiveMessage of the batcher's top-up. */
  readonly receiveMs: number;
  /** The ledger and fleet reads a batcher makes before it decides again after waiting or pulling. */
  readonly refreshMs: number;
  /** The batcher's decision to start a job until its claim (reading the job, parsing): the job's started_at. */
  readonly claimMs: number;
  /** The claim write and the InvokeEndpoint request until the copy has the prompt. */
  readonly invokeMs: number;
  /** The copy's answer until the result is written (response, decoding, the conditional write). */
  readonly resultMs: number;
  /** The result written until the client has the final event. */
  readonly notifyMs: number;
};

/** The embedded stack on 2 shared cores (README, "The tuning simulator"). */
export const EMBEDDED_STACK_OVERHEADS: Overheads = { submitMs: 8, deliverMs: 25, receiveMs: 10, refreshMs: 15, claimMs: 25, invokeMs: 15, resultMs: 35, notifyMs: 17 };

/**
 * The cores the stack's own steps share. On the embedded stack the handlers, fauxqs, dynalite, the
 * front doors and the poller run on the machine's few cores, so when many jobs arrive at once (a
 * burst of submits, a backlog) a step waits for a core: the bursty bench's jobs waited 1.5 s
 * between stored and started at the median with the copy a quarter full, which fixed costs alone
 * cannot show. Each of a job's `Overheads` is taken as CPU work; `offPathMsPerJob` is the work a
 * job costs beside its own path (the POST's answer after the message is sent, the WebSocket
 * subscribe, its events to other watchers).
 */
export type StackCpu = { readonly cores: number; readonly offPathMsPerJob: number };

/** The embedded stack on the bench's 2 cores (README, "The tuning simulator"). */
export const EMBEDDED_STACK_CPU: StackCpu = { cores: 2, offPathMsPerJob: 30 };

/**
 * The stack's CPU on the virtual clock, shared as the OS shares it among the stack's processes:
 * while more steps run than there are cores, each goes at cores/steps of a core's speed. (First
 * come, first served put a batcher's short step behind every submit of a burst, and the backlog
 * bench's GPU idled in the simulation while the real one did not.) Without a `StackCpu` (Lambda
 * scales out) every step takes its own time.
 */
export class SimCpu {
  readonly #clock: VirtualClock;
  readonly #cores: number;
  /** The steps running, by the service each has had when it is done; ties in the order they came. */
  readonly #running: { readonly doneAt: number; readonly then: () => void }[] = [];
  /** Service every running step has had since the first: ms of a core, growing at the share's rate. */
  #served = 0;
  #servedAtMs = 0;
  #cancelNext: (() => void) | undefined;

  constructor(clock: VirtualClock, cpu: StackCpu | undefined) {
    this.#clock = clock;
    this.#cores = cpu?.cores ?? Number.POSITIVE_INFINITY;
  }

  /** Calls `then` once `ms` of a core's work is done. */
  run(ms: number, then: () => void): void {
    if (this.#cores === Number.POSITIVE_INFINITY) {
      this.#clock.setTimer(then, ms);
      return;
    }
    this.#catchUp();
    const doneAt = this.#served + ms;
    const at = this.#running.findLastIndex((r) => r.doneAt <= doneAt) + 1;
    this.#running.splice(at, 0, { doneAt, then });
    this.#scheduleNext();
  }

  #share(): number {
    return Math.min(1, this.#cores / Math.max(1, this.#running.length));
  }

  #catchUp(): void {
    const now = this.#clock.now();
    this.#served += (now - this.#servedAtMs) * this.#share();
    this.#servedAtMs = now;
  }

  #scheduleNext(): void {
    this.#cancelNext?.();
    const next = this.#running[0];
    if (!next) return;
    this.#cancelNext = this.#clock.setTimer(() => {
      this.#cancelNext = undefined;
      this.#catchUp();
      const done: (() => void)[] = [];
      // A little slack for the rounding of shares.
      while (this.#running[0] && this.#running[0].doneAt <= this.#served + 1e-6) done.push((this.#running.shift() as { then: () => void }).then);
      this.#scheduleNext();
      for (const then of done) then();
    }, (next.doneAt - this.#served) / this.#share());
  }
}

/** The event source mapping of each lane: routes.yml's window. */
export type Mapping = { readonly batchSize: number; readonly batchingWindowMs: number; readonly maximumConcurrency: number };

/**
 * A batcher invocation's time budget (shared/config.ts: topUpUntil, topUpLatest): the defaults
 * of BATCHLINE_TOP_UP_BUDGET_SECONDS and BATCHLINE_FINISH_RESERVE_SECONDS, and the batcher's
 * timeout in infra/serverless-routes.cjs.
 */
export type BatcherTiming = { readonly topUpBudgetMs: number; readonly finishReserveMs: number; readonly timeoutMs: number };
export const DEFAULT_BATCHER_TIMING: BatcherTiming = { topUpBudgetMs: 60_000, finishReserveMs: 75_000, timeoutMs: 150_000 };

type Message = { readonly job: SimJob; visibleAtMs: number };

/** A lane's SQS queue: receives take visible messages oldest first; long polls wait for the next send. */
export class SimQueue {
  readonly #messages: Message[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #clock: VirtualClock;

  constructor(clock: VirtualClock) {
    this.#clock = clock;
  }

  send(job: SimJob, delayMs = 0): void {
    this.#messages.push({ job, visibleAtMs: this.#clock.now() + delayMs });
    const wake = () => {
      for (const waiter of [...this.#waiters]) waiter();
    };
    if (delayMs > 0) this.#clock.setTimer(wake, delayMs);
    else wake();
  }

  visible(): number {
    const now = this.#clock.now();
    return this.#messages.reduce((n, m) => n + (m.visibleAtMs <= now ? 1 : 0), 0);
  }

  receive(max: number): SimJob[] {
    const now = this.#clock.now();
    const taken: SimJob[] = [];
    for (let i = 0; i < this.#messages.length && taken.length < max; ) {
      const message = this.#messages[i] as Message;
      if (message.visibleAtMs <= now) {
        taken.push(message.job);
        this.#messages.splice(i, 1);
      } else i++;
    }
    return taken;
  }

  /** Calls `then` with what a receive of `max` gets, once a message is visible or `waitMs` has passed. */
  longPoll(max: number, waitMs: number, then: (jobs: SimJob[]) => void): void {
    if (this.visible() > 0 || waitMs <= 0) return then(this.receive(max));
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      this.#waiters.delete(finish);
      cancel();
      then(this.receive(max));
    };
    const cancel = this.#clock.setTimer(finish, waitMs);
    this.#waiters.add(finish);
  }
}

/** What one batcher publishes in the capacity ledger for the others. */
export type HolderState = {
  readonly oldestWaitingMs: number | undefined;
  readonly interactiveWaiting: boolean;
  readonly topUpUntilMs: number;
  readonly interactiveSeenMs: number | undefined;
};

/** The capacity ledger: what every batcher holds on each component, and what each publishes. */
export class SimLedger {
  readonly #held = new Map<string, { all: Load; interactive: Load }>();
  readonly holders = new Map<object, HolderState>();

  heldOn(component: string): { all: Load; interactive: Load } {
    return this.#held.get(component) ?? { all: noLoad, interactive: noLoad };
  }

  reserve(component: string, load: Load, lane: Lane, sign: 1 | -1): void {
    const held = this.heldOn(component);
    const change = (a: Load) => (sign > 0 ? addLoad(a, load) : subtractLoad(a, load));
    this.#held.set(component, { all: change(held.all), interactive: lane === "interactive" ? change(held.interactive) : held.interactive });
  }

  others(self: object): HolderState[] {
    return [...this.holders].flatMap(([holder, state]) => (holder === self ? [] : [state]));
  }
}

/** A component's copies: each the emulator's engine; SageMaker routes a request to the copy with the fewest outstanding. */
export class SimComponent {
  readonly component: Component;
  readonly #copies: { engine: CopyEngine; outstanding: number }[];
  /** GPU-busy ms and generated tokens per whole second of virtual time, over all copies. */
  readonly busyMsBySecond: number[] = [];
  readonly tokensBySecond: number[] = [];

  constructor(component: Component, clock: VirtualClock) {
    this.component = component;
    const batching = component.engine === "lmi-dynamic" ? "static" : "continuous";
    this.#copies = Array.from({ length: component.copies }, () => ({
      outstanding: 0,
      engine: createCopyEngine({
        profile: profileOf(component),
        limits: { maxSequences: component.limits.max_sequences, tokenBudget: component.limits.token_budget },
        batching,
        kv: component.kv_admission,
        clock,
        onIteration: (sample) => this.#record(sample.startMs, sample.ms, sample.tokens),
      }),
    }));
  }

  run(job: CopyJob): void {
    const copy = this.#copies.reduce((best, c) => (c.outstanding < best.outstanding ? c : best));
    copy.outstanding++;
    copy.engine.enqueue({ ...job, onDone: (run) => { copy.outstanding--; job.onDone(run); } });
  }

  #record(startMs: number, ms: number, tokens: number): void {
    // Spread over the seconds it spans, so a window's busy time and tokens are exact.
    for (let at = startMs; at < startMs + ms; ) {
      const second = Math.floor(at / 1000);
      const until = Math.min(startMs + ms, (second + 1) * 1000);
      const share = (until - at) / ms;
      this.busyMsBySecond[second] = (this.busyMsBySecond[second] ?? 0) + (until - at);
      this.tokensBySecond[second] = (this.tokensBySecond[second] ?? 0) + tokens * share;
      at = until;
    }
  }
}

const profileOf = (component: Component) => component.latency;

/** The route as one simulation runs it: its components with `copies`, and the settings. */
export type SimSetup = {
  readonly route: Route;
  readonly settings: RouteSettings;
  readonly mapping: Mapping;
  readonly overheads: Overheads;
  /** Undefined: the steps never wait for a core. */
  readonly cpu: StackCpu | undefined;
  readonly timing: BatcherTiming;
};

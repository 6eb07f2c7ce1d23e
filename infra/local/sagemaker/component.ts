import { SCALE_IN_ALARM } from "#shared/core/autoscaling-alarms";
import type { CopyPlacement } from "#shared/core/placement";
import { stopsWhenCallerLeaves } from "#shared/core/client-abort";
import type { Component } from "#shared/core/routes";
import type { EngineClock } from "./clock.ts";
import { cloudWatchMetrics } from "./cloudwatch.ts";
import { billedCopyMs, copyCountSeries, type CopyLifecycle } from "./copy-lifecycle.ts";
import { createCopyEngine, type CopyEngine, type CopyJob, type JobRun, type SequenceWork } from "./copy-engine.ts";
import { iterationSeries, latencyRecorder, type IterationSeries, type LatencyRecorder } from "./metrics.ts";

/**
 * One inference component: its copies (each on its own GPUs, each its own engine, all in
 * parallel), routing between them by least outstanding requests as SageMaker does, the container
 * queue bound, the invocation timeout, what CloudWatch would count and receive, and the instance
 * time AWS would bill. It knows nothing of HTTP.
 */

export type Outcome =
  | ({ readonly kind: "done"; readonly copy: number; readonly arrivedMs: number } & JobRun)
  /** The request would have answered after max_invocation_seconds; the GPU may still be running it. */
  | { readonly kind: "timeout"; readonly copy: number; readonly arrivedMs: number; readonly answeredMs: number }
  /** Its caller left and the container dropped it (`abandon`): nobody is answered. */
  | { readonly kind: "aborted"; readonly copy: number; readonly arrivedMs: number; readonly abortedMs: number };

export type Readiness =
  | { readonly ready: true }
  | { readonly ready: false; readonly reason: "no-copies" }
  | { readonly ready: false; readonly reason: "warming"; readonly readyInMs: number };

export type Invocation = {
  readonly sequences: readonly SequenceWork[];
  /** Simulated ms before the container sees the request (an injected slow call); it counts toward the timeout. */
  readonly delayMs?: number | undefined;
  /** Tokens as they are made, until the request is answered: how many each sequence has, and when. */
  readonly onProgress?: ((generated: readonly number[], atMs: number) => void) | undefined;
  /** Simulated time the request reached the container (before the emulator parsed it); default now. */
  readonly receivedMs?: number | undefined;
};

export type Routed =
  | {
      readonly kind: "accepted";
      readonly copy: number;
      readonly outcome: Promise<Outcome>;
      /**
       * The caller's connection closed before the answer. The container does what its engine does
       * (shared/core/client-abort.ts): vLLM stops the request wherever it is; DJL Serving drops it
       * only while it waits in the queue, and a request it has started runs to its end.
       */
      abandon(): void;
    }
  | { readonly kind: "queue-full"; readonly copy: number };

/** Per-component counts of failed calls, as CloudWatch names them. */
export type ErrorCounter = "invocation4xxErrors" | "invocation5xxErrors" | "invocationModelErrors" | "throttles" | "noCapacityInvocationFailures";

type Copy = CopyLifecycle & {
  readonly index: number;
  readonly placement: CopyPlacement;
  drainingSinceMs: number | undefined;
  goneAtMs: number | undefined;
  readonly engine: CopyEngine;
  readonly series: IterationSeries;
  readonly modelLatency: LatencyRecorder;
  readonly overheadLatency: LatencyRecorder;
  invocations: number;
  outstanding: number;
  maxOutstanding: number;
  timeouts: number;
  queueFullRefusals: number;
  /** Requests the container dropped because their caller left. */
  abandoned: number;
};

export type ComponentEngineOptions = {
  readonly clock: EngineClock;
  /** Width of the stats' time buckets, simulated ms. */
  readonly bucketMs?: number;
  /** Length of a CloudWatch metric period, simulated ms; default 10 s. */
  readonly metricPeriodMs?: number;
};

/** The datapoints the stats show: as many as the scale-in alarm reads (15 minutes of 10-s periods). */
const RECENT_DATAPOINTS = SCALE_IN_ALARM.datapoints * SCALE_IN_ALARM.metricPeriodsPerDatapoint;

export function createComponentEngine(component: Component, options: ComponentEngineOptions) {
  const { clock } = options;
  const profile = component.latency;
  const limitMs = component.limits.max_invocation_seconds * 1000;
  const bucketMs = options.bucketMs ?? 1000;
  const copies: Copy[] = [];
  const errors: Record<ErrorCounter, number> = { invocation4xxErrors: 0, invocation5xxErrors: 0, invocationModelErrors: 0, throttles: 0, noCapacityInvocationFailures: 0 };
  const componentLatency = { model: latencyRecorder(), overhead: latencyRecorder() };

  const live = () => copies.filter((c) => c.goneAtMs === undefined);
  const servingAt = (atMs: number) => copies.filter((c) => c.goneAtMs === undefined && c.drainingSinceMs === undefined && c.readyAtMs <= atMs);
  const serving = () => servingAt(clock.now());
  const metrics = cloudWatchMetrics({
    periodMs: options.metricPeriodMs ?? 10_000,
    loadAt: (atMs) => {
      const copiesServing = servingAt(atMs);
      return { servingCopies: copiesServing.length, outstanding: copiesServing.reduce((sum, c) => sum + c.outstanding, 0) };
    },
    nextChangeAfter: (atMs) => {
      const warmUpsEnding = live().filter((c) => c.drainingSinceMs === undefined && c.readyAtMs > atMs).map((c) => c.readyAtMs);
      return warmUpsEnding.length === 0 ? undefined : Math.min(...warmUpsEnding);
    },
  });
  /** Every change of the copies or their load goes through here, so the metrics see the load before it. */
  const changing = () => metrics.advanceTo(clock.now());

  function settle(copy: Copy): void {
    changing();
    copy.outstanding--;
    if (copy.drainingSinceMs !== undefined && copy.outstanding === 0) copy.goneAtMs = clock.now();
  }

  function run(copy: Copy, invocation: Invocation): { outcome: Promise<Outcome>; abandon(): void } {
    const { promise, resolve } = Promise.withResolvers<Outcome>();
    const arrivedMs = Math.min(clock.now(), invocation.receivedMs ?? Number.POSITIVE_INFINITY);
    const deadlineMs = arrivedMs + limitMs;
    let answered = false;
    let delivered = false;
    const answer = (outcome: Outcome) => {
      if (answered) return;
      answered = true;
      cancelDeadline();
      settle(copy);
      if (outcome.kind === "done") {
        copy.modelLatency.record(outcome.finishedMs - arrivedMs);
        componentLatency.model.record(outcome.finishedMs - arrivedMs);
      } else if (outcome.kind === "timeout") {
        copy.timeouts++;
      } else {
        copy.abandoned++;
      }
      resolve(outcome);
    };
    const timeout = () => answer({ kind: "timeout", copy: copy.index, arrivedMs, answeredMs: deadlineMs });
    const job: CopyJob = {
      // An injected slow call reaches the container that much later.
      arrivedMs: arrivedMs + (invocation.delayMs ?? 0),
      sequences: invocation.sequences,
      onProgress: (generated, atMs) => {
        if (!answered && atMs <= deadlineMs) invocation.onProgress?.(generated, atMs);
      },
      // A copy catching up on late timers may finish past the deadline before the deadline's own timer runs.
      onDone: (run) => (run.finishedMs > deadlineMs ? timeout() : answer({ kind: "done", copy: copy.index, arrivedMs, ...run })),
    };
    const cancelDeadline = clock.setTimer(() => {
      copy.engine.withdraw(job);
      timeout();
    }, deadlineMs - clock.now());
    const deliver = () => {
      if (answered) return;
      delivered = true;
      copy.engine.enqueue(job);
    };
    if ((invocation.delayMs ?? 0) > 0) clock.setTimer(deliver, invocation.delayMs ?? 0);
    else deliver();
    const abandon = () => {
      if (answered) return;
      if (stopsWhenCallerLeaves(component.engine)) copy.engine.abort(job);
      // Started already: DJL Serving runs it to its end, answering a connection that is gone.
      else if (delivered && !copy.engine.withdraw(job)) return;
      answer({ kind: "aborted", copy: copy.index, arrivedMs, abortedMs: clock.now() });
    };
    return { outcome: promise, abandon };
  }

  function readiness(): Readiness {
    if (serving().length > 0) return { ready: true };
    const warming = live().filter((c) => c.drainingSinceMs === undefined);
    if (warming.length === 0) return { ready: false, reason: "no-copies" };
    return { ready: false, reason: "warming", readyInMs: Math.min(...warming.map((c) => c.readyAtMs)) - clock.now() };
  }

  return {
    component,
    readiness,

    /** Routes a request to the serving copy with the fewest outstanding requests (callers check readiness first). */
    invoke(invocation: Invocation): Routed {
      const copy = serving().reduce<Copy | undefined>((best, c) => (best && best.outstanding <= c.outstanding ? best : c), undefined);
      if (!copy) throw new Error(`component ${component.name} has no copy serving`);
      if (copy.engine.waitingRequests() >= component.max_queue_length) {
        copy.queueFullRefusals++;
        return { kind: "queue-full", copy: copy.index };
      }
      changing();
      copy.invocations++;
      copy.outstanding++;
      copy.maxOutstanding = Math.max(copy.maxOutstanding, copy.outstanding);
      return { kind: "accepted", copy: copy.index, ...run(copy, invocation) };
    },

    /** A new copy on `placement` from now, serving once its `warmupMs` (simulated) have passed. */
    addCopy(placement: CopyPlacement, warmupMs: number): void {
      const series = iterationSeries(bucketMs);
      const engine = createCopyEngine({
        profile,
        limits: { maxSequences: component.limits.max_sequences, tokenBudget: component.limits.token_budget },
        batching: component.engine === "lmi-dynamic" ? "static" : "continuous",
        kv: component.kv_admission,
        clock,
        onIteration: series.record,
      });
      changing();
      const index = copies.length;
      const placedAtMs = clock.now();
      copies.push({
        index, placement, placedAtMs, readyAtMs: placedAtMs + warmupMs, drainingSinceMs: undefined, goneAtMs: undefined,
        engine, series, modelLatency: latencyRecorder(), overheadLatency: latencyRecorder(),
        invocations: 0, outstanding: 0, maxOutstanding: 0, timeouts: 0, queueFullRefusals: 0, abandoned: 0,
      });
    },

    /** Stops routing to the newest `count` copies; each leaves, freeing its GPUs, once it has answered all it holds. */
    drainCopies(count: number): void {
      changing();
      const now = clock.now();
      for (const copy of live().filter((c) => c.drainingSinceMs === undefined).slice(-count)) {
        copy.drainingSinceMs = now;
        if (copy.outstanding === 0) copy.goneAtMs = now;
      }
    },

    /** Copies that still hold GPUs (serving, warming or draining). */
    placements(): CopyPlacement[] {
      return live().map((c) => c.placement);
    },

    /** Copies that serve or will serve (not draining): DesiredCopyCount. */
    copyCount(): number {
      return live().filter((c) => c.drainingSinceMs === undefined).length;
    },

    /** Copies taking requests now: CurrentCopyCount. */
    servingCount(): number {
      return serving().length;
    },

    countError(counter: ErrorCounter): void {
      errors[counter]++;
      if (counter === "noCapacityInvocationFailures") metrics.countNoCapacity(clock.now());
    },

    /** What CloudWatch has of the component: its closed metric periods, oldest first. */
    datapoints() {
      return metrics.datapoints(clock.now());
    },

    /** SageMaker's own time around the container's, for the copy that answered. */
    recordOverhead(copyIndex: number, ms: number): void {
      copies[copyIndex]?.overheadLatency.record(ms);
      componentLatency.overhead.record(ms);
    },

    stats() {
      const now = clock.now();
      const copySeconds = billedCopyMs(copies, now) / 1000;
      return {
        component: component.name,
        endpoint: component.endpointName,
        engine: component.engine,
        kvAdmission: component.kv_admission,
        profile: component.profile,
        readiness: readiness(),
        desiredCopies: live().filter((c) => c.drainingSinceMs === undefined).length,
        currentCopies: serving().length,
        /** Simulated seconds of GPUs held, from each copy's placement (warm-up billed) until it is gone after draining. */
        billing: { copySeconds, gpuSeconds: copySeconds * component.accelerators_per_copy },
        copyCountSeries: copyCountSeries(copies, now),
        cloudWatch: { periodMs: metrics.periodMs, recentDatapoints: metrics.datapoints(now).slice(-RECENT_DATAPOINTS) },
        invocations: copies.reduce((sum, c) => sum + c.invocations, 0),
        ...errors,
        modelLatencyMs: componentLatency.model.stats(),
        overheadLatencyMs: componentLatency.overhead.stats(),
        bucketMs,
        copies: live().map((c) => {
          const totals = c.series.totals();
          const snapshot = c.engine.snapshot();
          return {
            copy: c.index,
            state: c.drainingSinceMs !== undefined ? "draining" : c.readyAtMs > now ? "warming" : "ready",
            instance: c.placement.instance,
            gpus: c.placement.gpus,
            placedAtMs: c.placedAtMs,
            readyAtMs: c.readyAtMs,
            drainingSinceMs: c.drainingSinceMs,
            invocations: c.invocations,
            concurrentRequests: c.outstanding,
            maxConcurrentRequests: c.maxOutstanding,
            timeouts: c.timeouts,
            queueFullRefusals: c.queueFullRefusals,
            abandoned: c.abandoned,
            modelLatencyMs: c.modelLatency.stats(),
            overheadLatencyMs: c.overheadLatency.stats(),
            ...totals,
            gpuBusyFraction: Math.min(1, totals.busyMs / Math.max(1, now - c.readyAtMs)),
            kvCacheTokens: { ...totals.kvCacheTokens, capacity: component.limits.token_budget, now: snapshot.kvTokens },
            runningSequences: snapshot.runningSequences,
            waitingSequences: snapshot.waitingSequences,
            waitingRequests: c.engine.waitingRequests(),
            clockMs: snapshot.clockMs,
            series: c.series.buckets(),
          };
        }),
      };
    },
  };
}

export type ComponentEngine = ReturnType<typeof createComponentEngine>;
export type ComponentStats = ReturnType<ComponentEngine["stats"]>;

import { getProfile } from "#shared/core/profiles";
import { staticBatchTimeline, type SequenceShape } from "#shared/core/latency-model";
import type { Component } from "#shared/core/routes";

/**
 * The simulated GPU behind one inference component: its copies, their queues and their batches,
 * timed by the one latency model. It knows nothing of HTTP, and its clock is injected so that
 * tests (and a later continuous-batching engine) can drive simulated time directly.
 */

/** Simulated time, ms. */
export type EngineClock = {
  now(): number;
  /** Calls `fn` once, no earlier than `delayMs` simulated ms from now; returns a cancel. */
  setTimer(fn: () => void, delayMs: number): () => void;
};

export type InvocationOutcome =
  | {
      readonly kind: "done";
      readonly copy: number;
      readonly batchId: number;
      /** Sequences in the batch this request ran in. */
      readonly batchSize: number;
      readonly arrivedMs: number;
      readonly startedMs: number;
      readonly finishedMs: number;
    }
  /** The request would have answered after the component's max_invocation_seconds. */
  | { readonly kind: "timeout"; readonly copy: number; readonly arrivedMs: number; readonly answeredMs: number };

export type CopyStats = {
  readonly copy: number;
  /** Requests routed to the copy. */
  readonly invocations: number;
  /** Sequences scheduled in its batches. */
  readonly sequences: number;
  /** Tokens of the sequences that have finished. */
  readonly tokensGenerated: number;
  readonly batches: number;
  /** Sequences per batch. */
  readonly meanBatchSize: number;
  readonly busyMs: number;
  /** The copy's own clock: the end of its last batch, simulated ms. */
  readonly clockMs: number;
  /** Requests routed to the copy and not yet answered. */
  readonly outstanding: number;
  readonly queueLength: number;
  readonly timeouts: number;
};

export type ComponentEngine = {
  /**
   * Runs one request (one sequence, or a dynamic batch's list) on the least busy copy.
   * Throws a RangeError for a request that can never fit one batch: callers validate first.
   */
  submit(sequences: readonly SequenceShape[]): Promise<InvocationOutcome>;
  stats(): CopyStats[];
};

type EngineComponent = Pick<Component, "copies" | "limits" | "profile">;

type Pending = {
  readonly sequences: readonly SequenceShape[];
  readonly arrivedMs: number;
  readonly deadlineMs: number;
  state: "queued" | "running" | "answered";
  finishMs: number;
  cancelDeadline: () => void;
  readonly answer: (outcome: InvocationOutcome) => void;
};

type Copy = {
  readonly index: number;
  readonly queue: Pending[];
  busy: boolean;
  startPending: boolean;
  clockMs: number;
  invocations: number;
  sequences: number;
  tokensGenerated: number;
  batches: number;
  busyMs: number;
  outstanding: number;
  timeouts: number;
};

const tokensOf = (sequences: readonly SequenceShape[]) => sequences.reduce((sum, s) => sum + s.promptTokens + s.newTokens, 0);

/** Whether a request could run in a batch of its own: the check callers make before submit. */
export function fitsOneBatch(limits: EngineComponent["limits"], sequences: readonly SequenceShape[]): boolean {
  return sequences.length > 0 && sequences.length <= limits.max_sequences && tokensOf(sequences) <= limits.token_budget;
}

/**
 * Static batching, first version: each copy runs one batch at a time; requests that arrive while
 * it is busy wait in its queue and go, in arrival order and whole, into the next batch, up to
 * max_sequences sequences and token_budget tokens.
 */
export function createComponentEngine(component: EngineComponent, clock: EngineClock): ComponentEngine {
  const profile = getProfile(component.profile);
  const { limits } = component;
  const limitMs = limits.max_invocation_seconds * 1000;
  let batchIds = 0;
  const copies: Copy[] = Array.from({ length: component.copies }, (_, index) => ({
    index,
    queue: [],
    busy: false,
    startPending: false,
    clockMs: 0,
    invocations: 0,
    sequences: 0,
    tokensGenerated: 0,
    batches: 0,
    busyMs: 0,
    outstanding: 0,
    timeouts: 0,
  }));

  function answer(copy: Copy, request: Pending, outcome: InvocationOutcome): void {
    if (request.state === "answered") return;
    request.state = "answered";
    request.cancelDeadline();
    copy.outstanding--;
    if (outcome.kind === "timeout") copy.timeouts++;
    request.answer(outcome);
  }

  function onDeadline(copy: Copy, request: Pending): void {
    if (request.state === "queued") copy.queue.splice(copy.queue.indexOf(request), 1);
    // A running request times out only if its batch would answer it late; the GPU still runs it.
    if (request.state === "queued" || (request.state === "running" && request.finishMs > request.deadlineMs)) {
      answer(copy, request, { kind: "timeout", copy: copy.index, arrivedMs: request.arrivedMs, answeredMs: clock.now() });
    }
  }

  function takeBatch(copy: Copy): Pending[] {
    const batch: Pending[] = [];
    let sequences = 0;
    let tokens = 0;
    for (const request of copy.queue) {
      const nextSequences = sequences + request.sequences.length;
      const nextTokens = tokens + tokensOf(request.sequences);
      if (nextSequences > limits.max_sequences || nextTokens > limits.token_budget) break;
      batch.push(request);
      sequences = nextSequences;
      tokens = nextTokens;
    }
    copy.queue.splice(0, batch.length);
    return batch;
  }

  function startBatch(copy: Copy): void {
    if (copy.busy) return;
    const batch = takeBatch(copy);
    if (batch.length === 0) return;
    const shapes = batch.flatMap((r) => r.sequences);
    const timeline = staticBatchTimeline(profile, shapes);
    const startedMs = clock.now();
    const batchId = ++batchIds;
    copy.busy = true;
    copy.batches++;
    copy.sequences += shapes.length;
    copy.busyMs += timeline.totalMs;
    copy.clockMs = startedMs + timeline.totalMs;
    let offset = 0;
    for (const request of batch) {
      const ends = timeline.finishMs.slice(offset, offset + request.sequences.length);
      offset += request.sequences.length;
      const endMs = Math.max(...ends);
      request.state = "running";
      request.finishMs = startedMs + endMs;
      clock.setTimer(() => {
        copy.tokensGenerated += request.sequences.reduce((sum, s) => sum + s.newTokens, 0);
        if (request.finishMs > request.deadlineMs) return;
        answer(copy, request, {
          kind: "done",
          copy: copy.index,
          batchId,
          batchSize: shapes.length,
          arrivedMs: request.arrivedMs,
          startedMs,
          finishedMs: clock.now(),
        });
      }, endMs);
    }
    clock.setTimer(() => {
      copy.busy = false;
      startBatch(copy);
    }, timeline.totalMs);
  }

  function scheduleStart(copy: Copy): void {
    if (copy.busy || copy.startPending) return;
    copy.startPending = true;
    // Starting on the next tick lets requests that arrive together share the first batch.
    clock.setTimer(() => {
      copy.startPending = false;
      startBatch(copy);
    }, 0);
  }

  return {
    submit(sequences) {
      if (!fitsOneBatch(limits, sequences)) {
        throw new RangeError(`request of ${sequences.length} sequences and ${tokensOf(sequences)} tokens can never fit one batch`);
      }
      const copy = copies.reduce<Copy | undefined>((best, c) => (best && best.outstanding <= c.outstanding ? best : c), undefined);
      if (!copy) throw new RangeError("the component has no copies");
      return new Promise<InvocationOutcome>((resolve) => {
        const arrivedMs = clock.now();
        const request: Pending = {
          sequences,
          arrivedMs,
          deadlineMs: arrivedMs + limitMs,
          state: "queued",
          finishMs: Number.POSITIVE_INFINITY,
          cancelDeadline: () => {},
          answer: resolve,
        };
        request.cancelDeadline = clock.setTimer(() => onDeadline(copy, request), limitMs);
        copy.invocations++;
        copy.outstanding++;
        copy.queue.push(request);
        scheduleStart(copy);
      });
    },
    stats() {
      return copies.map((c) => ({
        copy: c.index,
        invocations: c.invocations,
        sequences: c.sequences,
        tokensGenerated: c.tokensGenerated,
        batches: c.batches,
        meanBatchSize: c.batches === 0 ? 0 : c.sequences / c.batches,
        busyMs: c.busyMs,
        clockMs: c.clockMs,
        outstanding: c.outstanding,
        queueLength: c.queue.length,
        timeouts: c.timeouts,
      }));
    },
  };
}

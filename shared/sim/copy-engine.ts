import { iterationMs } from "../core/latency-model.ts";
import type { LatencyProfile } from "../core/profiles.ts";
import type { KvAdmission } from "../core/routes.ts";
import { admitContinuous, admitStatic, cacheTokensOf, type AdmissionLimits } from "./admission.ts";
import type { EngineClock } from "./engine-clock.ts";

/**
 * The simulated GPU of one inference component copy: a queue and a loop of iterations, each timed
 * by the one latency model. Continuous batching admits and retires sequences at every iteration;
 * static batching runs a batch of whole requests until its longest sequence is done. Each token
 * is reported at the end of the iteration that makes it, which is what streaming clients see.
 */

/** One prompt of a request: its tokens, what it will generate, and what it may (for reservations). */
export type SequenceWork = { readonly promptTokens: number; readonly newTokens: number; readonly maxNewTokens: number };

/** How a request went on the GPU, simulated ms. */
export type JobRun = {
  readonly startedMs: number;
  readonly firstTokenMs: number;
  readonly finishedMs: number;
  /** The most sequences it shared an iteration with, itself included. */
  readonly batchSize: number;
  readonly preemptions: number;
};

export type CopyJob = {
  /** When the request reached the copy, if before it was enqueued (the emulator's parsing of it is not GPU time); default now. */
  readonly arrivedMs?: number | undefined;
  readonly sequences: readonly SequenceWork[];
  /** After each iteration that made tokens for this request: how many each of its sequences has now, and when. */
  readonly onProgress?: ((generated: readonly number[], atMs: number) => void) | undefined;
  readonly onDone: (run: JobRun) => void;
};

/** One iteration of a copy's engine. */
export type IterationSample = {
  readonly startMs: number;
  readonly ms: number;
  /** Sequences in the iteration (running and newly admitted). */
  readonly batchSize: number;
  /** KV-cache tokens held (or reserved) during it. */
  readonly kvTokens: number;
  /** Tokens it generated: one per sequence. */
  readonly tokens: number;
  /** Prompt tokens it prefilled (recomputed ones of preempted sequences included). */
  readonly prefillTokens: number;
  /** Sequences left waiting in the container's queue. */
  readonly waiting: number;
  readonly preempted: number;
};

export type CopyEngineOptions = {
  readonly profile: LatencyProfile;
  readonly limits: AdmissionLimits;
  /** continuous: LMI rolling batch and vLLM; static: LMI dynamic batch. */
  readonly batching: "continuous" | "static";
  readonly kv: KvAdmission;
  readonly clock: EngineClock;
  readonly onIteration?: (sample: IterationSample) => void;
};

export type CopyEngine = {
  enqueue(job: CopyJob): void;
  /** Takes a request that has not started out of the queue; false once any of it has run. */
  withdraw(job: CopyJob): boolean;
  /**
   * Stops a request wherever it is, as vLLM aborts one: its sequences leave the queue or the
   * running batch, and their KV cache is free for the next iteration; it is never answered. False
   * when the copy does not hold it (answered, withdrawn or aborted already).
   */
  abort(job: CopyJob): boolean;
  /** Requests in the container's queue that have not started. */
  waitingRequests(): number;
  snapshot(): { readonly runningSequences: number; readonly waitingSequences: number; readonly kvTokens: number; readonly clockMs: number };
};

type Live = {
  readonly job: CopyJob;
  readonly arrivedMs: number;
  readonly sequences: Sequence[];
  startedMs: number | undefined;
  firstTokenMs: number | undefined;
  batchSize: number;
  preemptions: number;
  aborted: boolean;
};

type Sequence = SequenceWork & { readonly owner: Live; generated: number };

type Iteration = { readonly endMs: number; readonly members: readonly Sequence[] };

export function createCopyEngine(options: CopyEngineOptions): CopyEngine {
  const { profile, limits, clock, kv } = options;
  const accounting: KvAdmission = options.batching === "static" ? "reserve" : kv;
  let waiting: Sequence[] = [];
  let running: Sequence[] = [];
  /** End of the last iteration: the copy's own simulated time. */
  let clockMs = 0;
  let looping = false;
  const liveOf = new WeakMap<CopyJob, Live>();

  function admit(): { admitted: Sequence[]; preempted: Sequence[] } {
    if (options.batching === "static") {
      if (running.length > 0) return { admitted: [], preempted: [] };
      const requests = Map.groupBy(waiting, (s) => s.owner);
      return { admitted: waiting.splice(0, admitStatic([...requests.values()], limits)), preempted: [] };
    }
    const { admit: joining, preempt } = admitContinuous(running, waiting, kv, limits);
    const preempted = running.splice(running.length - preempt, preempt);
    for (const s of preempted) s.owner.preemptions++;
    waiting.unshift(...preempted);
    return { admitted: waiting.splice(0, joining), preempted };
  }

  /**
   * Starts the next iteration, no earlier than `fromMs` nor than the arrival of a request it
   * admits; returns undefined when there is nothing to run.
   */
  function begin(fromMs: number): Iteration | undefined {
    const { admitted, preempted } = admit();
    if (running.length === 0 && admitted.length === 0) return undefined;
    const atMs = Math.max(fromMs, ...admitted.map((s) => s.owner.arrivedMs));
    const context = (list: readonly Sequence[]) => list.reduce((sum, s) => sum + s.promptTokens + s.generated, 0);
    const ms = iterationMs(profile, { decodeSequences: running.length, decodeContextTokens: context(running), prefillTokens: context(admitted) });
    const members = [...running, ...admitted];
    for (const s of admitted) s.owner.startedMs ??= atMs;
    for (const s of members) s.owner.batchSize = Math.max(s.owner.batchSize, members.length);
    running = members;
    options.onIteration?.({
      startMs: atMs,
      ms,
      batchSize: members.length,
      kvTokens: cacheTokensOf(members, accounting),
      tokens: members.length,
      prefillTokens: context(admitted),
      waiting: waiting.length,
      preempted: preempted.length,
    });
    return { endMs: atMs + ms, members };
  }

  /** Every member makes one token; the finished leave, and their requests are answered when whole. */
  function finish(iteration: Iteration): void {
    clockMs = iteration.endMs;
    const touched = new Set<Live>();
    for (const s of iteration.members) {
      // Aborted while this iteration ran: the GPU computed its token, nobody gets it.
      if (s.owner.aborted) continue;
      s.generated++;
      s.owner.firstTokenMs ??= iteration.endMs;
      touched.add(s.owner);
    }
    running = running.filter((s) => s.generated < s.newTokens);
    for (const live of touched) {
      live.job.onProgress?.(live.sequences.map((s) => s.generated), iteration.endMs);
      if (live.sequences.every((s) => s.generated >= s.newTokens)) {
        live.job.onDone({
          startedMs: live.startedMs ?? iteration.endMs,
          firstTokenMs: live.firstTokenMs ?? iteration.endMs,
          finishedMs: iteration.endMs,
          batchSize: live.batchSize,
          preemptions: live.preemptions,
        });
      }
    }
  }

  /**
   * Runs iterations back to back from `atMs`. Each ends at its ideal simulated time; one whose end
   * the clock has already passed (a late timer, or a high time scale) finishes at once, so delays
   * never accumulate, and requests that arrived meanwhile join at the next iteration, after they
   * arrived.
   */
  function loop(atMs: number): void {
    let start = atMs;
    for (;;) {
      const iteration = begin(start);
      if (!iteration) {
        looping = false;
        return;
      }
      const leftMs = iteration.endMs - clock.now();
      if (leftMs > 0) {
        clock.setTimer(() => {
          finish(iteration);
          loop(iteration.endMs);
        }, leftMs);
        return;
      }
      finish(iteration);
      start = iteration.endMs;
    }
  }

  return {
    enqueue(job) {
      const live: Live = { job, arrivedMs: Math.min(clock.now(), job.arrivedMs ?? Number.POSITIVE_INFINITY), sequences: [], startedMs: undefined, firstTokenMs: undefined, batchSize: 0, preemptions: 0, aborted: false };
      live.sequences.push(...job.sequences.map((s) => ({ ...s, owner: live, generated: 0 })));
      liveOf.set(job, live);
      waiting.push(...live.sequences);
      if (looping) return;
      looping = true;
      // On the next tick, so that requests arriving together share the first iteration; it starts
      // when they arrived, not when the tick came.
      clock.setTimer(() => loop(clockMs), 0);
    },
    withdraw(job) {
      const live = liveOf.get(job);
      liveOf.delete(job);
      if (!live || live.startedMs !== undefined) return false;
      waiting = waiting.filter((s) => s.owner !== live);
      return true;
    },
    abort(job) {
      const live = liveOf.get(job);
      liveOf.delete(job);
      if (!live || live.sequences.every((s) => s.generated >= s.newTokens)) return false;
      live.aborted = true;
      waiting = waiting.filter((s) => s.owner !== live);
      running = running.filter((s) => s.owner !== live);
      return true;
    },
    waitingRequests() {
      return new Set(waiting.filter((s) => s.owner.startedMs === undefined).map((s) => s.owner)).size;
    },
    snapshot() {
      return { runningSequences: running.length, waitingSequences: waiting.length, kvTokens: cacheTokensOf(running, accounting), clockMs };
    },
  };
}

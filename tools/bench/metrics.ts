import { percentile } from "#shared/core/stats";
import { latencyOf, type Outcome } from "./outcome.ts";

export { costPerMillionTokens, percentile } from "#shared/core/stats";

/**
 * The numbers of one run, from what happened to each request. Pure: the driver measures, this
 * summarizes, so that the arithmetic is tested on its own.
 */

export type LatencySummary = {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly mean: number;
  /**
   * Share of requests with no answer by the end of the run. Their latency counts as the time
   * they had waited by then, so a percentile that reaches them is a lower bound.
   */
  readonly censored: number;
};

/** Latency percentiles over every request of the trace: one that never finished is not left out. */
export function latencySummary(outcomes: readonly Outcome[], runEndMs: number): LatencySummary {
  const considered = outcomes.filter((o) => o.status !== "rejected");
  const values = considered.map((o) => latencyOf(o) ?? Math.max(0, runEndMs - o.arrivalMs));
  const unfinished = considered.filter((o) => o.finishedMs === undefined).length;
  return {
    p50: percentile(values, 0.5),
    p95: percentile(values, 0.95),
    p99: percentile(values, 0.99),
    mean: values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length,
    censored: considered.length === 0 ? 0 : unfinished / considered.length,
  };
}

/** Completions per minute and generated tokens per second over [fromMs, toMs). */
export function windowThroughput(outcomes: readonly Outcome[], fromMs: number, toMs: number): { rpm: number; tokensPerS: number; completed: number } {
  const spanMs = toMs - fromMs;
  if (!(spanMs > 0)) return { rpm: 0, tokensPerS: 0, completed: 0 };
  const done = outcomes.filter((o) => o.status === "succeeded" && o.finishedMs !== undefined && o.finishedMs >= fromMs && o.finishedMs < toMs);
  const tokens = done.reduce((sum, o) => sum + o.completionTokens, 0);
  return { rpm: (done.length * 60_000) / spanMs, tokensPerS: (tokens * 1000) / spanMs, completed: done.length };
}

/**
 * The end of the steady part of a saturated run: the first moment after the arrivals stopped
 * when fewer requests were waiting or running than `backlog` (below it the engine can no longer
 * be kept full). Requests waiting counts arrivals not yet answered.
 */
export function saturatedUntil(outcomes: readonly Outcome[], arrivalsEndMs: number, backlog: number, runEndMs: number): number {
  const events = [
    ...outcomes.map((o) => ({ atMs: o.arrivalMs, delta: 1 })),
    ...outcomes.flatMap((o) => (o.finishedMs === undefined ? [] : [{ atMs: o.finishedMs, delta: -1 }])),
  ].toSorted((a, b) => a.atMs - b.atMs || a.delta - b.delta);
  let outstanding = 0;
  for (const [i, event] of events.entries()) {
    outstanding += event.delta;
    // Only once every event of this instant is counted.
    if (events[i + 1]?.atMs === event.atMs) continue;
    if (event.atMs >= arrivalsEndMs && outstanding < backlog) return Math.min(runEndMs, event.atMs);
  }
  return runEndMs;
}

/**
 * Where a pipeline request's time went, ms: until the API stored the job (submitted_at, from the
 * request's time in the trace), waiting for the GPU (until started_at), on the GPU with its result
 * write (until finished_at), and until its final event reached the client.
 */
export type Phases = { readonly submit_ms: number; readonly queue_ms: number; readonly gpu_ms: number; readonly notify_ms: number };

/**
 * The phases of the typical request (each phase's median) against those of the slowest 1% (their
 * means): which phase a tail comes from. Undefined without the jobs' timings (the engine alone).
 */
export function tailPhases(outcomes: readonly Outcome[]): { readonly median: Phases; readonly slowest_1pct: Phases; readonly slowest_count: number } | undefined {
  const timed = outcomes.flatMap((o) => {
    const t = o.timeline;
    const latency = latencyOf(o);
    if (latency === undefined || t?.submittedMs === undefined || t.startedMs === undefined || t.doneMs === undefined || o.finishedMs === undefined) return [];
    const phases: Phases = { submit_ms: t.submittedMs - o.arrivalMs, queue_ms: t.startedMs - t.submittedMs, gpu_ms: t.doneMs - t.startedMs, notify_ms: o.finishedMs - t.doneMs };
    return [{ latency, phases }];
  });
  if (timed.length === 0) return undefined;
  const keys = ["submit_ms", "queue_ms", "gpu_ms", "notify_ms"] as const;
  const slowest = timed.toSorted((a, b) => b.latency - a.latency).slice(0, Math.max(1, Math.ceil(timed.length / 100)));
  const of = (f: (key: (typeof keys)[number]) => number): Phases => Object.fromEntries(keys.map((k) => [k, f(k)])) as Phases;
  return {
    median: of((k) => percentile(timed.map((t) => t.phases[k]), 0.5)),
    slowest_1pct: of((k) => slowest.reduce((sum, t) => sum + t.phases[k], 0) / slowest.length),
    slowest_count: slowest.length,
  };
}

/** How far the start estimated at submit was from the job's start, ms: over all jobs, and over those that waited. */
export type EtaError = {
  readonly jobs: number;
  readonly median_ms: number;
  readonly p90_ms: number;
  /** Median of estimated − actual: above 0, estimates run late. */
  readonly bias_ms: number;
  /** The same over the jobs that waited at least WAITED_MS to start, the ones a person would watch. */
  readonly waited: { readonly jobs: number; readonly median_ms: number; readonly p90_ms: number } | null;
};

export const WAITED_MS = 1_000;

/** |estimated − actual| start of the jobs whose POST answer carried an estimate (issue 12 item 2). */
export function etaError(outcomes: readonly Outcome[]): EtaError | undefined {
  const pairs = outcomes.flatMap((o) => {
    const t = o.timeline;
    return t?.estimatedStartMs === undefined || t.startedMs === undefined || t.submittedMs === undefined ? [] : [{ signed: t.estimatedStartMs - t.startedMs, waitedMs: t.startedMs - t.submittedMs }];
  });
  if (pairs.length === 0) return undefined;
  const errors = (list: typeof pairs) => list.map((p) => Math.abs(p.signed));
  const waited = pairs.filter((p) => p.waitedMs >= WAITED_MS);
  return {
    jobs: pairs.length,
    median_ms: percentile(errors(pairs), 0.5),
    p90_ms: percentile(errors(pairs), 0.9),
    bias_ms: percentile(pairs.map((p) => p.signed), 0.5),
    waited: waited.length === 0 ? null : { jobs: waited.length, median_ms: percentile(errors(waited), 0.5), p90_ms: percentile(errors(waited), 0.9) },
  };
}

/** Median of the queue waits the jobs reported (started_at − submitted_at). */
export function queueWaitP50(outcomes: readonly Outcome[]): number {
  return percentile(outcomes.flatMap((o) => (o.queueWaitMs === undefined ? [] : [o.queueWaitMs])), 0.5);
}

/** Counts by status. */
export function statusCounts(outcomes: readonly Outcome[]): Record<Outcome["status"], number> {
  const counts = { succeeded: 0, failed: 0, rejected: 0, unfinished: 0 };
  for (const o of outcomes) counts[o.status]++;
  return counts;
}

/** Sequences one copy admits at once for requests of this size: its max_sequences or its KV budget (prompt + max new tokens), whichever binds. */
export function admissionLimit(limits: { readonly max_sequences: number; readonly token_budget: number }, tokensPerRequest: number): number {
  return Math.max(1, Math.min(limits.max_sequences, Math.floor(limits.token_budget / Math.max(1, tokensPerRequest))));
}

/**
 * Requests served per minute over whole turnovers of the running batch (issue 15 item 7). Answers
 * come in waves as the batch turns over (all at once when a policy starts its requests together),
 * so a window that cuts a wave, or is shorter than a turnover, counts a share of a wave that does
 * not belong to it; the GPU's token rate over such a window depends on which part of the wave it
 * holds (a prefill or the decode that follows) as much. Here the window starts and ends where a
 * wave has just ended: at the answer followed by the longest pause within a turnover of the steady
 * part's first answer, and likewise within a turnover of its last. The answers after the first end
 * up to the second, over the time between them, are then whole waves; in a steady flow, any two
 * answers do as well, within one answer. The time between them is read on the GPU's clock where
 * given: the emulator's simulated time, which a loaded machine slows down for every run alike,
 * where the wall's would make the engine alone and a policy measured minutes apart incomparable.
 */
export type TurnoverThroughput = {
  readonly rpm: number;
  readonly completed: number;
  /** The window, ms after the trace started: from the end of one wave to the end of another. */
  readonly fromMs: number;
  readonly toMs: number;
  /** The window's length in turnovers: below 1 it cannot hold a whole one, and the rate is not to be trusted (the report says so). */
  readonly turnovers: number;
};

/** When each request that succeeded was answered, ms after the trace started. */
export function succeededAt(outcomes: readonly Outcome[]): number[] {
  return outcomes.flatMap((o) => (o.status === "succeeded" && o.finishedMs !== undefined ? [o.finishedMs] : []));
}

export function turnoverThroughput(
  finishedMs: readonly number[],
  steadyFromMs: number,
  steadyToMs: number,
  turnoverMs: number,
  /** The time that passed between two instants, by the clock the rate is read on (the GPU's own, simulated); default the wall's. */
  elapsedMs: (fromMs: number, toMs: number) => number = (from, to) => to - from,
): TurnoverThroughput | undefined {
  const all = finishedMs.toSorted((a, b) => a - b);
  const pauseAfter = (i: number) => (all[i + 1] ?? Number.POSITIVE_INFINITY) - (all[i] as number);
  const steady = all.flatMap((t, i) => (t >= steadyFromMs && t <= steadyToMs ? [i] : []));
  const first = steady[0];
  const last = steady.at(-1);
  if (first === undefined || last === undefined || first === last) return undefined;
  const longestPause = (candidates: readonly number[]) => candidates.reduce((best, i) => (pauseAfter(i) > pauseAfter(best) ? i : best));
  // Each end is looked for within a turnover of the steady part's ends, or half of it where it is
  // shorter than two: a steady part shorter than a turnover cannot hold a whole one anyway.
  const searchMs = Math.min(turnoverMs, ((all[last] as number) - (all[first] as number)) / 2);
  const start = longestPause(steady.filter((i) => (all[i] as number) <= (all[first] as number) + searchMs && i < last));
  const ends = steady.filter((i) => i > start && (all[i] as number) >= (all[last] as number) - searchMs);
  // The pause after the steady part's last answer is measured to the next one, past the steady part.
  const end = longestPause(ends);
  const fromMs = all[start] as number;
  const toMs = all[end] as number;
  const spanMs = elapsedMs(fromMs, toMs);
  if (!(toMs > fromMs) || !(spanMs > 0)) return undefined;
  const completed = end - start;
  return { rpm: (completed * 60_000) / spanMs, completed, fromMs, toMs, turnovers: spanMs / turnoverMs };
}

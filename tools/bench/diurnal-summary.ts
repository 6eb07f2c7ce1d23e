import { latencySummary, percentile, statusCounts } from "./metrics.ts";
import type { Outcome } from "./outcome.ts";

/**
 * The numbers of one fleet through the compressed day, from what happened to each request and
 * how many copies the component had over time. Pure: the runner samples, this summarizes.
 */

/** The component's copies at one moment: `billed` hold GPUs (warming, serving, draining), `serving` answer. */
export type CopySample = { readonly atMs: number; readonly billed: number; readonly serving: number };

export type FleetPricing = { readonly pricePerGpuHour: number; readonly gpusPerCopy: number };

export type FleetReport = {
  readonly name: string;
  readonly requests: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly rejected: number;
  readonly unfinished: number;
  /** failed + rejected + unfinished: every request should be answered. */
  readonly errors: number;
  /** GPU-hours of the compressed day as it ran (copies × accelerators × wall time). */
  readonly gpu_hours: number;
  readonly cost_usd: number;
  readonly generated_tokens: number;
  readonly cost_per_million_tokens: number | null;
  readonly mean_copies: number;
  readonly max_copies: number;
  readonly p50_ms: number;
  readonly p95_ms: number;
  readonly p99_ms: number;
  readonly latency_censored: number;
  readonly latency_objective_ms: number;
  readonly met_latency_objective: boolean;
  /** Jobs told they wait for a copy starting (waiting_reason "warming"), and their queue waits. */
  readonly warming: {
    readonly jobs: number;
    readonly queue_wait_p50_ms: number | null;
    readonly queue_wait_max_ms: number | null;
    /** Requests that arrived while no copy served, and how many of them succeeded. */
    readonly arrived_at_zero: number;
    readonly answered_at_zero: number;
  };
};

/** Copy-ms under a step function of samples, from `fromMs` to `toMs` (each sample holds until the next). */
export function copyMs(samples: readonly CopySample[], fromMs: number, toMs: number, pick: (s: CopySample) => number): number {
  let total = 0;
  for (const [i, sample] of samples.entries()) {
    const start = Math.max(fromMs, sample.atMs);
    const end = Math.min(toMs, samples[i + 1]?.atMs ?? toMs);
    if (end > start) total += pick(sample) * (end - start);
  }
  return total;
}

/** Serving copies at `atMs`: the last sample at or before it (none before the first: zero). */
export function servingAt(samples: readonly CopySample[], atMs: number): number {
  let serving = 0;
  for (const sample of samples) {
    if (sample.atMs > atMs) break;
    serving = sample.serving;
  }
  return serving;
}

export function summarizeFleet(
  name: string,
  outcomes: readonly Outcome[],
  samples: readonly CopySample[],
  span: { readonly fromMs: number; readonly toMs: number },
  pricing: FleetPricing,
  latencyObjectiveMs: number,
): FleetReport {
  const counts = statusCounts(outcomes);
  const latency = latencySummary(outcomes, span.toMs);
  const billedMs = copyMs(samples, span.fromMs, span.toMs, (s) => s.billed);
  const gpuHours = (billedMs * pricing.gpusPerCopy) / 3_600_000;
  const cost = gpuHours * pricing.pricePerGpuHour;
  const tokens = outcomes.reduce((sum, o) => sum + (o.status === "succeeded" ? o.completionTokens : 0), 0);
  const warmed = outcomes.filter((o) => o.waitedForWarming);
  const waits = warmed.flatMap((o) => (o.queueWaitMs === undefined ? [] : [o.queueWaitMs]));
  const atZero = outcomes.filter((o) => servingAt(samples, o.arrivalMs) === 0);
  const spanMs = span.toMs - span.fromMs;
  return {
    name,
    requests: outcomes.length,
    ...counts,
    errors: counts.failed + counts.rejected + counts.unfinished,
    gpu_hours: gpuHours,
    cost_usd: cost,
    generated_tokens: tokens,
    cost_per_million_tokens: tokens > 0 ? (cost * 1e6) / tokens : null,
    mean_copies: spanMs > 0 ? billedMs / spanMs : 0,
    max_copies: Math.max(0, ...samples.map((s) => s.billed)),
    p50_ms: latency.p50,
    p95_ms: latency.p95,
    p99_ms: latency.p99,
    latency_censored: latency.censored,
    latency_objective_ms: latencyObjectiveMs,
    met_latency_objective: latency.censored === 0 && latency.p95 <= latencyObjectiveMs,
    warming: {
      jobs: warmed.length,
      queue_wait_p50_ms: waits.length > 0 ? percentile(waits, 0.5) : null,
      queue_wait_max_ms: waits.length > 0 ? Math.max(...waits) : null,
      arrived_at_zero: atZero.length,
      answered_at_zero: atZero.filter((o) => o.status === "succeeded").length,
    },
  };
}

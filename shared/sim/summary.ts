import { costPerMillionTokens, percentile } from "../core/stats.ts";
import type { SimRun } from "./pipeline.ts";

/** What the simulator predicts for a route under one set of settings (the predict endpoint's P). */
export type Prediction = {
  readonly throughput_rpm: number;
  readonly p50_ms: number;
  readonly p95_ms: number;
  readonly p99_ms: number;
  readonly gpu_busy: number;
  readonly cost_per_million_tokens: number;
  /** Jobs of the trace still unanswered when the simulation stopped (their latency counts up to then). */
  readonly unanswered: number;
};

export type SummaryOptions = {
  /** The span of the trace's arrivals, ms. */
  readonly durationMs: number;
  /**
   * "latency": answers counted over the arrivals' span shifted by the median latency;
   * "saturated": generated tokens per second from `warmupMs` to the arrivals' end, in requests (the bench's definitions, tools/bench/run.ts).
   */
  readonly kind: "latency" | "saturated";
  readonly warmupMs?: number;
  readonly pricePerGpuHour: number;
};

/** The bench's numbers, from a simulated run. */
export function summarize(run: SimRun, options: SummaryOptions): Prediction {
  const latencies = run.outcomes.map((o) => (o.finishedMs ?? run.endMs) - o.job.atMs);
  const p50 = percentile(latencies, 0.5);
  let rpm: number;
  let tokensPerS: number;
  if (options.kind === "saturated") {
    const from = Math.floor((options.warmupMs ?? 0) / 1000);
    const to = Math.max(from + 1, Math.floor(options.durationMs / 1000));
    const tokens = run.tokensBySecond.slice(from, to).reduce((a, b) => a + b, 0);
    tokensPerS = tokens / (to - from);
    const meanNew = run.outcomes.reduce((s, o) => s + o.job.maxTokens, 0) / Math.max(1, run.outcomes.length);
    rpm = (tokensPerS * 60) / meanNew;
  } else {
    const shift = Math.min(Math.max(0, run.endMs - options.durationMs), Number.isNaN(p50) ? 0 : p50);
    // The window's end is inclusive: a run ends at its last answer, which the bench's client sees a moment before it stops.
    const counted = run.outcomes.filter((o) => o.finishedMs !== undefined && o.finishedMs >= shift && o.finishedMs <= shift + options.durationMs);
    rpm = (counted.length * 60_000) / options.durationMs;
    tokensPerS = (counted.reduce((s, o) => s + o.completionTokens, 0) * 1000) / options.durationMs;
  }
  const busyMs = run.busyMsBySecond.reduce((a, b) => a + b, 0);
  return {
    throughput_rpm: rpm,
    p50_ms: p50,
    p95_ms: percentile(latencies, 0.95),
    p99_ms: percentile(latencies, 0.99),
    gpu_busy: run.endMs > 0 && run.gpus > 0 ? Math.min(1, busyMs / (run.endMs * run.gpus)) : 0,
    cost_per_million_tokens: costPerMillionTokens(options.pricePerGpuHour, run.gpus, tokensPerS),
    unanswered: run.outcomes.filter((o) => o.finishedMs === undefined).length,
  };
}

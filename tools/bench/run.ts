import { loadavg } from "node:os";
import type { Component } from "#shared/core/routes";
import { gpuHourPrice } from "#shared/core/routes";
import { type GpuWindow, gpuWindow } from "./gpu.ts";
import type { HoldMeasured } from "./hold-board.ts";
import { nearest, sampleGpu, simulatedClockAt, type TimedSnapshot } from "./gpu-sampler.ts";
import {
  admissionLimit, costPerMillionTokens, succeededAt, turnoverThroughput, etaError, type EtaError, latencySummary, percentile, type Phases, queueWaitP50, saturatedUntil, statusCounts, tailPhases, windowThroughput,
} from "./metrics.ts";
import type { Outcome } from "./outcome.ts";
import type { Scenario } from "./scenarios.ts";
import type { PredictionCheck } from "./prediction.ts";
import type { TraceRequest } from "./trace.ts";
import type { ServerlessCost } from "./aws-cost.ts";

/**
 * A pipeline run's AWS requests and serverless cost per job (issue 15 item 6, issue 18 item 2), by
 * the kind of job it ran; `complete` is false when the run stopped with jobs unanswered (their
 * remaining requests are not in it).
 */
export type RunServerlessCost = ServerlessCost & { readonly kind: "single" | "batch-line"; readonly complete: boolean };

/** The numbers of one policy (or the engine alone) on one scenario. */
export type RunResult = {
  readonly name: string;
  /**
   * Requests served per minute. Latency scenarios: answers counted over the span of arrivals
   * shifted by the median latency. Saturated: answers over whole turnovers of the running batch
   * within the steady part (metrics.ts, turnoverThroughput).
   */
  readonly throughput_rpm: number;
  /** Answers counted over the same window. */
  readonly completed_rpm: number;
  readonly tokens_per_s: number;
  readonly p50_ms: number;
  readonly p95_ms: number;
  readonly p99_ms: number;
  readonly mean_ms: number;
  /** Share of requests unanswered at the end: percentiles that reach them are lower bounds. */
  readonly latency_censored: number;
  readonly queue_wait_p50_ms: number | null;
  /** Pipeline runs: where the typical request's time went, and the slowest 1%'s (null for the engine alone). */
  readonly phases: { readonly median: Phases; readonly slowest_1pct: Phases; readonly slowest_count: number } | null;
  /** Pipeline runs: how far the start estimated at submit was from the start (null for the engine alone). */
  readonly eta_error: EtaError | null;
  /** Mean sequences in the running batch while the GPU was busy, over what one copy admits for this trace. */
  readonly batch_fill: number;
  readonly mean_batch: number;
  readonly gpu_busy: number;
  readonly cost_per_million_tokens: number;
  readonly requests: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly rejected: number;
  readonly unfinished: number;
  /** The span the throughput was measured over, s after the trace started. */
  readonly measured_from_s: number;
  readonly measured_to_s: number;
  /** Saturated: the span's length in turnovers of the running batch (below 1, no whole turnover was seen); null otherwise. */
  readonly measured_turnovers?: number | null;
  /** Other policies that ran this trace at the same time (light scenarios of a quick run). */
  readonly ran_with: readonly string[];
  /** The machine's 1-minute load average when the run ended: the machine is shared. */
  readonly machine_load: number;
  readonly errors: readonly string[];
  /** Static-engine pipeline runs: what the hold measured on the route by the end (absent for the engine alone). */
  readonly hold?: HoldMeasured | null | undefined;
  /** (d) policies: the tuning simulator's prediction for this run, beside the measurement (issue 14 item 4). */
  readonly prediction?: PredictionCheck | null;
  /** Pipeline runs: what the serverless half asked of AWS and cost, per job (absent for the engine alone). */
  readonly serverless?: RunServerlessCost | null;
};

export type RunInput = {
  readonly name: string;
  readonly scenario: Scenario;
  readonly component: Component;
  readonly outcomes: readonly Outcome[];
  /** performance.now() of the trace's time zero. */
  readonly originMs: number;
  /** When the run stopped waiting, ms after the trace started. */
  readonly runEndMs: number;
  readonly gpu: readonly TimedSnapshot[];
  readonly ranWith?: readonly string[];
};

/** Mean prompt + max new tokens of a trace, for the copy's admission limit. */
export function meanRequestTokens(trace: readonly TraceRequest[]): number {
  return trace.length === 0 ? 1024 : trace.reduce((sum, r) => sum + r.promptTokens + r.maxTokens, 0) / trace.length;
}

export function summarizeRun(input: RunInput): RunResult {
  const { scenario, outcomes, component } = input;
  const latency = latencySummary(outcomes, input.runEndMs);
  const shapes = outcomes.map((o) => ({ index: o.index, atMs: o.arrivalMs, promptTokens: o.promptTokens, maxTokens: o.maxTokens }));
  const limit = admissionLimit(component.limits, meanRequestTokens(shapes)) * Math.max(1, component.copies);
  const durationMs = scenario.trace.durationMs;
  let fromMs: number;
  let toMs: number;
  let rate: { rpm: number; tokensPerS: number };
  let counted: { rpm: number };
  let window: GpuWindow;
  let turnovers: number | null = null;
  if (scenario.kind === "saturated") {
    // Steady while the copies hold all they admit and more wait: from when they first held it
    // (at the earliest the warm-up's end; the warm-up's end for a run that never filled them)
    // to when the backlog ran out. A pipeline's ramp (its submits reach the GPU a little later
    // than the engine's own clients) is latency, not throughput.
    fromMs = firstFull(input.gpu, input.originMs, limit, scenario.warmupMs, durationMs);
    toMs = Math.max(fromMs + 1, saturatedUntil(outcomes, durationMs, Math.ceil(1.2 * limit), input.runEndMs));
    window = gpuOverWindow(input.gpu, input.originMs + fromMs, input.originMs + toMs);
    // Requests served: answers over whole turnovers of the batch (metrics.ts, turnoverThroughput).
    // The GPU's tokens over the steady part give the tokens per second, and a turnover's length
    // (the requests a copy admits over the rate it serves them at: Little's law).
    const tokensPerS = window.simMs > 0 ? (window.tokens * 1000) / window.simMs : 0;
    const tokenRpm = (tokensPerS * 60) / meanNewTokens(shapes);
    const onGpuClock = (a: number, b: number) => simulatedClockAt(input.gpu, input.originMs + b) - simulatedClockAt(input.gpu, input.originMs + a);
    const whole = turnoverThroughput(succeededAt(outcomes), fromMs, toMs, tokenRpm > 0 ? (limit * 60_000) / tokenRpm : toMs - fromMs, onGpuClock);
    turnovers = whole?.turnovers ?? 0;
    if (whole) {
      fromMs = whole.fromMs;
      toMs = whole.toMs;
      window = gpuOverWindow(input.gpu, input.originMs + fromMs, input.originMs + toMs);
    }
    counted = { rpm: whole?.rpm ?? 0 };
    rate = { rpm: whole?.rpm ?? 0, tokensPerS: window.simMs > 0 ? (window.tokens * 1000) / window.simMs : tokensPerS };
  } else {
    // The trace's span of arrivals, shifted by the run's median latency: the answers to them.
    const finished = outcomes.flatMap((o) => (o.finishedMs === undefined ? [] : [o.finishedMs - o.arrivalMs]));
    const shift = Math.min(Math.max(0, input.runEndMs - durationMs), finished.length > 0 ? percentile(finished, 0.5) : 0);
    fromMs = shift;
    toMs = shift + durationMs;
    counted = windowThroughput(outcomes, fromMs, toMs);
    rate = counted as { rpm: number; tokensPerS: number };
    window = gpuOverWindow(input.gpu, input.originMs, input.originMs + input.runEndMs);
  }
  const counts = statusCounts(outcomes);
  const gpus = component.copies * component.accelerators_per_copy;
  const waits = queueWaitP50(outcomes);
  return {
    name: input.name,
    throughput_rpm: rate.rpm,
    completed_rpm: counted.rpm,
    tokens_per_s: rate.tokensPerS,
    p50_ms: latency.p50,
    p95_ms: latency.p95,
    p99_ms: latency.p99,
    mean_ms: latency.mean,
    latency_censored: latency.censored,
    queue_wait_p50_ms: Number.isNaN(waits) ? null : waits,
    phases: tailPhases(outcomes) ?? null,
    eta_error: etaError(outcomes) ?? null,
    batch_fill: window.meanBatch / limit,
    mean_batch: window.meanBatch,
    gpu_busy: window.busyFraction,
    cost_per_million_tokens: costPerMillionTokens(gpuHourPrice(component), gpus, rate.tokensPerS),
    requests: outcomes.length,
    succeeded: counts.succeeded,
    failed: counts.failed,
    rejected: counts.rejected,
    unfinished: counts.unfinished,
    measured_from_s: fromMs / 1000,
    measured_to_s: toMs / 1000,
    measured_turnovers: turnovers,
    ran_with: input.ranWith ?? [],
    machine_load: loadavg()[0] ?? 0,
    errors: [...new Set(outcomes.flatMap((o) => (o.error ? [o.error.slice(0, 160)] : [])))].slice(0, 3),
  };
}

/** When the copies first held `limit` requests, ms after the trace's start, within [warmupMs, durationMs]. */
function firstFull(samples: readonly TimedSnapshot[], originMs: number, limit: number, warmupMs: number, durationMs: number): number {
  const full = samples.find((s) => s.outstanding >= limit && s.atMs - originMs >= warmupMs);
  if (!full) return warmupMs;
  return Math.min(durationMs, full.atMs - originMs);
}

export function meanNewTokens(trace: readonly TraceRequest[]): number {
  return trace.length === 0 ? 512 : trace.reduce((sum, r) => sum + r.maxTokens, 0) / trace.length;
}

export function gpuOverWindow(samples: readonly TimedSnapshot[], fromMs: number, toMs: number): GpuWindow {
  const before = nearest(samples, fromMs);
  const after = nearest(samples, toMs);
  if (!before || !after || before === after) return { busyFraction: 0, meanBatch: 0, tokens: 0, simMs: 0 };
  return gpuWindow(before, after);
}

/** Runs `drive` with the GPU sampled around it. */
export async function withGpuSamples<T>(sagemakerUrl: string, component: string, drive: () => Promise<T>): Promise<{ result: T; gpu: TimedSnapshot[] }> {
  const sampler = sampleGpu(sagemakerUrl, component, 1000);
  try {
    const result = await drive();
    return { result, gpu: await sampler.stop() };
  } catch (error) {
    await sampler.stop().catch(() => undefined);
    throw error;
  }
}

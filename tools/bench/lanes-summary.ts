import type { LanesPredictionCheck } from "./prediction.ts";
import { latencySummary, percentile, type Phases, tailPhases } from "./metrics.ts";
import type { Outcome } from "./outcome.ts";
import type { CapacityAtBound } from "./lanes-capacity.ts";
import type { TargetCheck } from "./targets.ts";

/**
 * The lanes scenario's arithmetic (issue 12 item 3), pure so that it is tested on its own: what
 * the interactive jobs saw idle and beside a draining batch file, and how fast the batch drained
 * against the room the interactive jobs left it.
 */

export const LANES_SCENARIO = "lanes";
/** The first target: the interactive p95 beside the batch at most this times its idle p95. */
export const LANES_P95_BOUND = 1.25;

export type LanesReport = {
  readonly name: typeof LANES_SCENARIO;
  readonly title: string;
  readonly seed: number;
  readonly batch: {
    readonly jobs: number;
    readonly files: number;
    readonly prompt_tokens: number;
    readonly max_tokens: number;
    /** When into the interactive trace the last file was accepted (the measured span starts there), and how long the files took to be accepted. */
    readonly landed_at_s: number;
    readonly accepted_after_s: number;
    /** Batch jobs succeeded by the end of the interactive run (the rest were abandoned). */
    readonly succeeded_by_end: number | null;
    /** The GPU's busy share over the interactive trace's span, and what the copy held over the run, [s after the trace started, requests]. */
    readonly gpu_busy: number;
    readonly copy_outstanding: readonly (readonly [number, number])[];
  };
  /** `measured`: the interactive jobs that arrived after the batch landed, the ones idle and under_batch summarize. */
  readonly interactive: { readonly rpm: number; readonly duration_s: number; readonly requests: number; readonly measured: number; readonly prompt_tokens: number; readonly max_tokens: number };
  readonly idle: InteractiveRun;
  readonly under_batch: InteractiveRun;
  readonly drain: BatchDrain;
  readonly p95_ratio: number;
  /** The tuning simulator's prediction: the batch's drain as throughput, the interactive p95 beside it and idle (issue 14 item 4). */
  readonly prediction?: LanesPredictionCheck;
};

/** The interactive trace's numbers in one run (idle, or beside the batch). */
export type InteractiveRun = {
  readonly requests: number;
  readonly succeeded: number;
  readonly unfinished: number;
  readonly p50_ms: number;
  readonly p95_ms: number;
  readonly p99_ms: number;
  /** Share unanswered at the end: a percentile that reaches them is a lower bound. */
  readonly latency_censored: number;
  /** Time to start: started_at − submitted_at. */
  readonly queue_wait_p50_ms: number;
  readonly queue_wait_p95_ms: number;
  /** On the GPU, result written: finished_at − started_at. */
  readonly gpu_p50_ms: number;
  readonly gpu_p95_ms: number;
  /** GPU time over generated tokens, median over jobs: how fast each decoded beside what else ran. */
  readonly ms_per_token_p50: number;
  readonly phases: { readonly median: Phases; readonly slowest_1pct: Phases; readonly slowest_count: number } | null;
  readonly gpu_busy: number;
  readonly mean_batch: number;
  readonly machine_load: number;
};

export function interactiveRun(outcomes: readonly Outcome[], runEndMs: number, gpu: { readonly busyFraction: number; readonly meanBatch: number }, machineLoad: number): InteractiveRun {
  const latency = latencySummary(outcomes, runEndMs);
  const waits = outcomes.flatMap((o) => (o.queueWaitMs === undefined ? [] : [o.queueWaitMs]));
  const onGpu = outcomes.flatMap((o) => {
    const t = o.timeline;
    return t?.startedMs === undefined || t.doneMs === undefined ? [] : [{ ms: t.doneMs - t.startedMs, tokens: o.completionTokens }];
  });
  return {
    requests: outcomes.length,
    succeeded: outcomes.filter((o) => o.status === "succeeded").length,
    unfinished: outcomes.filter((o) => o.status === "unfinished").length,
    p50_ms: latency.p50,
    p95_ms: latency.p95,
    p99_ms: latency.p99,
    latency_censored: latency.censored,
    queue_wait_p50_ms: percentile(waits, 0.5),
    queue_wait_p95_ms: percentile(waits, 0.95),
    gpu_p50_ms: percentile(onGpu.map((g) => g.ms), 0.5),
    gpu_p95_ms: percentile(onGpu.map((g) => g.ms), 0.95),
    ms_per_token_p50: percentile(onGpu.flatMap((g) => (g.tokens > 0 ? [g.ms / g.tokens] : [])), 0.5),
    phases: tailPhases(outcomes) ?? null,
    gpu_busy: gpu.busyFraction,
    mean_batch: gpu.meanBatch,
    machine_load: machineLoad,
  };
}

/**
 * Tokens the jobs generated within [fromMs, toMs), each job's completion tokens spread evenly over
 * its time on the GPU (started → finished): jobs that straddle the window's edges count their share.
 */
export function tokensWithin(outcomes: readonly Outcome[], fromMs: number, toMs: number): number {
  let tokens = 0;
  for (const o of outcomes) {
    const start = o.timeline?.startedMs;
    const end = o.timeline?.doneMs;
    if (start === undefined || end === undefined || o.completionTokens <= 0) continue;
    if (end <= start) {
      if (start >= fromMs && start < toMs) tokens += o.completionTokens;
      continue;
    }
    const overlap = Math.max(0, Math.min(end, toMs) - Math.max(start, fromMs));
    tokens += (o.completionTokens * overlap) / (end - start);
  }
  return tokens;
}

/**
 * The engine alone's ceiling (its closed loop, in generated tokens a second) less what the
 * interactive jobs generated, over the batch job's new tokens, in batch jobs a minute: what the
 * batch would drain on a copy full of it, where the interactive jobs could not meet their p95
 * bound (lanes-capacity.ts). Reported beside the target's measure, not as it.
 */
export function capacityLeftRpm(input: { readonly engineTokensPerS: number; readonly interactiveTokensPerS: number; readonly batchMaxTokens: number }): number {
  return (Math.max(0, input.engineTokensPerS - input.interactiveTokensPerS) * 60) / input.batchMaxTokens;
}

/** How the batch drained in the window the interactive trace ran over. */
export type BatchDrain = {
  readonly measured_from_s: number;
  readonly measured_to_s: number;
  /** Generated on the GPU in the window, and by the interactive jobs (their share, prorated). */
  readonly gpu_tokens: number;
  readonly interactive_tokens: number;
  readonly engine_tokens_per_s: number;
  readonly interactive_tokens_per_s: number;
  readonly batch_tokens_per_s: number;
  /** Batch jobs a minute: the batch's tokens a second over its jobs' new tokens. */
  readonly drain_rpm: number;
  readonly engine_direct_rpm: number;
  /** The whole copy less the interactive jobs' tokens (capacityLeftRpm), and the drain against it. */
  readonly capacity_left_rpm: number;
  readonly drain_of_capacity_left: number;
  /** What the interactive jobs leave the batch at their p95 bound (lanes-capacity.ts): the target's measure. */
  readonly capacity_at_bound: CapacityAtBound;
  /** drain_rpm / capacity_at_bound.rpm. */
  readonly drain_ratio: number;
  /** The fewest requests the copy held in the window (its admission limit: full). */
  readonly min_outstanding: number;
  readonly admission_limit: number;
  /** Batch jobs not done at the end (null: unknown): fewer than the copy admits, and the batch ran short of work to give it. */
  readonly batch_left_at_end: number | null;
  /**
   * The batch lane's cap while interactive work is around (interactive_slowdown_percent): the batch
   * sequences it lets the copies hold, and the batch's capacity at that operating point, those
   * sequences decoding one token each per step, at the step the interactive jobs measured beside
   * the batch (their GPU ms a token, median). Not the target's measure: capacity_left_rpm is.
   */
  readonly cap: { readonly slowdown_percent: number; readonly batch_sequences: number; readonly step_ms: number; readonly capacity_rpm: number; readonly drain_ratio: number } | null;
};

export function batchDrain(input: {
  readonly fromMs: number;
  readonly toMs: number;
  /** Generated tokens and simulated ms the GPU counted over the window. */
  readonly gpuTokens: number;
  readonly simMs: number;
  readonly interactive: readonly Outcome[];
  readonly engineTokensPerS: number;
  readonly batchMaxTokens: number;
  readonly minOutstanding: number;
  readonly admissionLimit: number;
  readonly batchLeftAtEnd: number | null;
  readonly atBound: CapacityAtBound;
  readonly cap?: { readonly slowdownPercent: number; readonly batchSequences: number; readonly stepMs: number } | undefined;
}): BatchDrain {
  const seconds = input.simMs / 1000;
  const interactiveTokens = tokensWithin(input.interactive, input.fromMs, input.toMs);
  const interactivePerS = seconds > 0 ? interactiveTokens / seconds : 0;
  const batchPerS = seconds > 0 ? Math.max(0, input.gpuTokens - interactiveTokens) / seconds : 0;
  const drainRpm = (batchPerS * 60) / input.batchMaxTokens;
  const left = capacityLeftRpm({ engineTokensPerS: input.engineTokensPerS, interactiveTokensPerS: interactivePerS, batchMaxTokens: input.batchMaxTokens });
  const capRpm = input.cap && input.cap.stepMs > 0 ? (input.cap.batchSequences * 60_000) / (input.cap.stepMs * input.batchMaxTokens) : Number.NaN;
  return {
    measured_from_s: input.fromMs / 1000,
    measured_to_s: input.toMs / 1000,
    gpu_tokens: input.gpuTokens,
    interactive_tokens: interactiveTokens,
    engine_tokens_per_s: input.engineTokensPerS,
    interactive_tokens_per_s: interactivePerS,
    batch_tokens_per_s: batchPerS,
    drain_rpm: drainRpm,
    engine_direct_rpm: (input.engineTokensPerS * 60) / input.batchMaxTokens,
    capacity_left_rpm: left,
    drain_of_capacity_left: left > 0 ? drainRpm / left : Number.NaN,
    capacity_at_bound: input.atBound,
    drain_ratio: input.atBound.rpm > 0 ? drainRpm / input.atBound.rpm : Number.NaN,
    min_outstanding: input.minOutstanding,
    admission_limit: input.admissionLimit,
    batch_left_at_end: input.batchLeftAtEnd,
    cap: input.cap
      ? { slowdown_percent: input.cap.slowdownPercent, batch_sequences: input.cap.batchSequences, step_ms: input.cap.stepMs, capacity_rpm: capRpm, drain_ratio: capRpm > 0 ? drainRpm / capRpm : Number.NaN }
      : null,
  };
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));
const s = (ms: number) => `${fmt(ms / 1000)} s`;

/**
 * Issue 12 item 3's targets: the interactive p95 beside the batch at most 1.25× its idle p95 (a
 * p95 beside the batch that reaches unanswered jobs is a lower bound: the truth is only worse, so
 * it can miss but not meet), and the batch draining at ≥ 0.9 of the room the interactive jobs
 * leave (only while the batch had work to give the copy: a batch that ran short measures nothing;
 * a copy left idle with the batch still queued is the pipeline's to answer for, and counts).
 */
export function lanesTargets(idle: InteractiveRun, underBatch: InteractiveRun, drain: BatchDrain): TargetCheck[] {
  const ratio = underBatch.p95_ms / idle.p95_ms;
  const bound = underBatch.latency_censored > 0.05 ? "≥ " : "";
  const exact = underBatch.latency_censored <= 0.05 && idle.latency_censored <= 0.05;
  const where = `queue wait p95 ${s(idle.queue_wait_p95_ms)} -> ${s(underBatch.queue_wait_p95_ms)}, GPU p95 ${s(idle.gpu_p95_ms)} -> ${s(underBatch.gpu_p95_ms)}`;
  const short = drain.batch_left_at_end !== null && drain.batch_left_at_end < drain.admission_limit;
  return [
    {
      name: "lanes_interactive_p95",
      target: `<= ${LANES_P95_BOUND}x the interactive p95 on an idle system`,
      measured: `${bound}${s(underBatch.p95_ms)} / ${s(idle.p95_ms)} = ${bound}${fmt(ratio)}x (${where})`,
      value: ratio,
      met: exact && ratio <= LANES_P95_BOUND,
    },
    {
      name: "lanes_batch_drain",
      target: ">= 0.9 of the capacity the interactive jobs leave (at their p95 bound, by the latency model)",
      measured: `${fmt(drain.drain_rpm, 1)} / ${fmt(drain.capacity_at_bound.rpm, 1)} jobs/min = ${fmt(drain.drain_ratio)}${short ? " (the batch ran short of work for the copy)" : ""} (${drain.capacity_at_bound.batch_sequences} batch sequences at a ${fmt(drain.capacity_at_bound.step_ms)} ms step); the whole copy less the interactive jobs would be ${fmt(drain.capacity_left_rpm, 1)} (${fmt(drain.drain_of_capacity_left)})`,
      value: drain.drain_ratio,
      met: !short && drain.drain_ratio >= 0.9,
    },
  ];
}

const LANES_HEADER = ["interactive", "p50 s", "p95 s", "p99 s", "wait p50", "wait p95", "GPU p50", "GPU p95", "ms/tok", "batch", "done/sent", "load"];
const LANES_WIDTHS = [14, 7, 7, 7, 8, 8, 8, 8, 6, 6, 9, 5];

const cell = (v: number, digits: number, scale = 1) => (Number.isFinite(v) ? (v / scale).toFixed(digits) : "-");

function lanesRow(label: string, r: InteractiveRun): string {
  const bound = r.latency_censored > 0 ? "≥" : "";
  const cells = [
    label, bound + cell(r.p50_ms, 2, 1000), bound + cell(r.p95_ms, 2, 1000), bound + cell(r.p99_ms, 2, 1000),
    cell(r.queue_wait_p50_ms, 2, 1000), cell(r.queue_wait_p95_ms, 2, 1000), cell(r.gpu_p50_ms, 2, 1000), cell(r.gpu_p95_ms, 2, 1000),
    cell(r.ms_per_token_p50, 1), cell(r.mean_batch, 0), `${r.succeeded}/${r.requests}`, cell(r.machine_load, 1),
  ];
  return cells.map((c, i) => (i === 0 ? c.padEnd(LANES_WIDTHS[i] ?? 0) : c.padStart(LANES_WIDTHS[i] ?? 0))).join("  ");
}

/** The lanes scenario's table: the interactive trace idle and beside the batch, and the batch's drain. */
export function lanesLines(r: LanesReport): string[] {
  const d = r.drain;
  return [
    `${r.name}: ${r.title} — ${r.interactive.requests} interactive jobs over ${r.interactive.duration_s.toFixed(0)} s, idle first, then with the batch in from ${r.batch.landed_at_s.toFixed(1)} s into it (${r.batch.files} file(s), accepted in ${r.batch.accepted_after_s.toFixed(1)} s); the ${r.interactive.measured} that arrived after it measured`,
    LANES_HEADER.map((c, i) => (i === 0 ? c.padEnd(LANES_WIDTHS[i] ?? 0) : c.padStart(LANES_WIDTHS[i] ?? 0))).join("  "),
    lanesRow("idle", r.idle),
    lanesRow("beside batch", r.under_batch),
    `  interactive p95 beside the batch / idle: ${cell(r.p95_ratio, 2)}x; wait: time to start (started_at − submitted_at); GPU: started_at to finished_at; ms/tok: GPU time per generated token; batch: mean running batch`,
    `  batch drain over ${d.measured_from_s.toFixed(0)}-${d.measured_to_s.toFixed(0)} s: ${cell(d.drain_rpm, 1)} jobs/min (${cell(d.batch_tokens_per_s, 0)} tok/s) of the ${cell(d.capacity_at_bound.rpm, 1)} the interactive jobs leave at their p95 bound (${d.capacity_at_bound.batch_sequences} batch sequences, model p95 ${s(d.capacity_at_bound.interactive_p95_ms)}): ratio ${cell(d.drain_ratio, 2)}; GPU busy ${cell(r.batch.gpu_busy, 2)}; ${r.batch.succeeded_by_end ?? "-"} of ${r.batch.jobs} batch jobs done by the end`,
    `  the whole copy less the interactive jobs: engine alone ${cell(d.engine_direct_rpm, 1)} jobs/min (${cell(d.engine_tokens_per_s, 0)} tok/s) less their ${cell(d.interactive_tokens_per_s, 0)} tok/s = ${cell(d.capacity_left_rpm, 1)}, drained ${cell(d.drain_of_capacity_left, 2)} of it`,
    ...(d.cap
      ? [`  at the batch lane's cap (interactive_slowdown_percent ${d.cap.slowdown_percent}: ${d.cap.batch_sequences} batch sequences, at the ${cell(d.cap.step_ms, 1)} ms step measured): capacity ${cell(d.cap.capacity_rpm, 1)} jobs/min, drained ${cell(d.cap.drain_ratio, 2)} of it`]
      : []),
    ...(r.prediction
      ? [
          `  tuning simulator: idle p95 ${cell(r.prediction.idle_p95_ms / 1000, 2)} s (${signed(r.prediction.error_idle_p95)}), beside the batch ${cell(r.prediction.p95_ms / 1000, 2)} s (${signed(r.prediction.error_p95)}), batch drain ${cell(r.prediction.throughput_rpm, 1)} jobs/min (${signed(r.prediction.error_throughput)}); in ${r.prediction.simulated_in_ms.toFixed(0)} ms`,
        ]
      : []),
  ];
}

const signed = (share: number) => (Number.isFinite(share) ? `${share >= 0 ? "+" : ""}${(100 * share).toFixed(1)}%` : "-");

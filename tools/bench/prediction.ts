import { gpuHourPrice } from "#shared/core/routes";
import { simulate, simulateEngineAlone } from "#shared/sim/pipeline";
import { simJobsOf, simSetup } from "#shared/sim/setup";
import { percentile } from "#shared/core/stats";
import { summarize } from "#shared/sim/summary";
import type { SimRun } from "#shared/sim/pipeline";
import { admissionLimit, saturatedUntil } from "./metrics.ts";
import type { Outcome } from "./outcome.ts";
import type { PolicyStack } from "./policy-stack.ts";
import { meanRequestTokens, type RunResult } from "./run.ts";
import type { Scenario } from "./scenarios.ts";
import type { TraceRequest } from "./trace.ts";

/** Local pollers per mapping when MaximumConcurrency is left to AWS's own scaling. */
const AWS_SCALING_POLLERS = 5;

/** The tuning simulator's prediction for a run, beside what the run measured (issue 14 item 4). */
export type PredictionCheck = {
  readonly throughput_rpm: number;
  readonly p95_ms: number;
  readonly measured_throughput_rpm: number;
  readonly measured_p95_ms: number;
  /** (predicted − measured) / measured. */
  readonly error_throughput: number;
  readonly error_p95: number;
  /** Wall-clock ms the simulation took. */
  readonly simulated_in_ms: number;
  /**
   * The engine alone on the same trace, simulated against measured: how far the machine ran the
   * emulator from its own latency model (timers late on loaded cores), which the pipeline's
   * measurement carries too. Null where the scenario's engine run is not at hand.
   */
  readonly engine_alone: {
    readonly p95_ms: number;
    readonly measured_p95_ms: number;
    readonly error_p95: number;
    /** The pipeline's p95 over the engine alone's, predicted against measured: the prediction's error with the machine's drift, common to both runs, taken out. */
    readonly error_p95_over_engine: number;
  } | null;
};

/** Simulates the trace on the stack's route, settings and mapping, and sets the prediction beside the measurement. */
export function predictRun(
  stack: PolicyStack,
  scenario: Scenario,
  trace: readonly TraceRequest[],
  measured: Pick<RunResult, "throughput_rpm" | "p95_ms">,
  engineMeasured: Pick<RunResult, "p95_ms"> | undefined,
): PredictionCheck {
  const started = performance.now();
  const route = { ...stack.route, components: [stack.component] };
  const setup = simSetup(route, stack.settings, {
    mapping: {
      batchSize: stack.mapping.batchSize,
      batchingWindowMs: stack.mapping.maximumBatchingWindowSeconds * 1000,
      maximumConcurrency: stack.mapping.maximumConcurrency ?? AWS_SCALING_POLLERS,
    },
  });
  const whole = simulate(setup, simJobsOf(trace), { untilMs: scenario.trace.durationMs + scenario.drainMs });
  const run = scenario.kind === "saturated" ? endOfSteadyPart(whole, scenario, admissionLimit(stack.component.limits, meanRequestTokens(trace)) * Math.max(1, stack.component.copies)) : whole;
  const predicted = summarize(run, { durationMs: scenario.trace.durationMs, kind: scenario.kind, warmupMs: scenario.warmupMs, pricePerGpuHour: gpuHourPrice(stack.component) });
  const simulatedInMs = performance.now() - started;
  const engine = engineMeasured && summarize(simulateEngineAlone(stack.component, simJobsOf(trace), { untilMs: scenario.trace.durationMs + scenario.drainMs }), {
    durationMs: scenario.trace.durationMs, kind: scenario.kind, warmupMs: scenario.warmupMs, pricePerGpuHour: gpuHourPrice(stack.component),
  });
  const engineAlone =
    engine && engineMeasured
      ? {
          p95_ms: engine.p95_ms,
          measured_p95_ms: engineMeasured.p95_ms,
          error_p95: relativeError(engine.p95_ms, engineMeasured.p95_ms),
          error_p95_over_engine: relativeError(predicted.p95_ms / engine.p95_ms, measured.p95_ms / engineMeasured.p95_ms),
        }
      : null;
  return { ...check(predicted, measured, simulatedInMs), engine_alone: engineAlone };
}

const relativeError = (predicted: number, measured: number) => (measured > 0 ? (predicted - measured) / measured : Number.NaN);

/**
 * A saturated run stops waiting once fewer than 1.2 × what the copies admit are unanswered after
 * the arrivals end (phases.ts, runPolicy); the simulated run is cut where the real one would be,
 * so that its p95 counts the same unanswered jobs up to then.
 */
function endOfSteadyPart(run: SimRun, scenario: Scenario, limit: number): SimRun {
  const outcomes = run.outcomes.map((o): Outcome => ({
    index: 0, arrivalMs: o.job.atMs, promptTokens: o.job.promptTokens, maxTokens: o.job.maxTokens,
    status: o.finishedMs === undefined ? "unfinished" : "succeeded", finishedMs: o.finishedMs, completionTokens: o.completionTokens,
  }));
  const cutMs = saturatedUntil(outcomes, scenario.trace.durationMs, Math.ceil(1.2 * limit), run.endMs);
  const cut = run.outcomes.map((o) => (o.finishedMs !== undefined && o.finishedMs > cutMs ? { ...o, finishedMs: undefined } : o));
  return { ...run, endMs: cutMs, outcomes: cut };
}

function check(predicted: Pick<RunResult, "throughput_rpm" | "p95_ms">, measured: Pick<RunResult, "throughput_rpm" | "p95_ms">, simulatedInMs: number): Omit<PredictionCheck, "engine_alone"> {
  const error = relativeError;
  return {
    throughput_rpm: predicted.throughput_rpm,
    p95_ms: predicted.p95_ms,
    measured_throughput_rpm: measured.throughput_rpm,
    measured_p95_ms: measured.p95_ms,
    error_throughput: error(predicted.throughput_rpm, measured.throughput_rpm),
    error_p95: error(predicted.p95_ms, measured.p95_ms),
    simulated_in_ms: simulatedInMs,
  };
}

/** The lanes scenario's prediction: the batch's drain as its throughput, the interactive p95 beside it, and idle. */
export type LanesPredictionCheck = PredictionCheck & { readonly idle_p95_ms: number; readonly measured_idle_p95_ms: number; readonly error_idle_p95: number };

/**
 * The lanes scenario simulated as it runs: the interactive trace alone; then the batch's jobs in
 * the batch lane and the same trace starting once the copy is full (as long after the batch as
 * the run measured). Throughput is the batch's drain over the interactive trace's span, in jobs a
 * minute (batch tokens over its max new tokens), as lanes-summary.ts counts it.
 */
export function predictLanes(
  stack: PolicyStack,
  plan: { readonly batchJobs: number; readonly batchPromptTokens: number; readonly batchMaxTokens: number; readonly drainMs: number; readonly interactive: Scenario["trace"] },
  trace: readonly TraceRequest[],
  /** What the bench measured over what followed the batch's landing, `landedMs` into the trace. */
  measured: { readonly idleP95Ms: number; readonly besideP95Ms: number; readonly drainRpm: number; readonly landedMs: number },
): LanesPredictionCheck {
  const started = performance.now();
  const setup = simSetup({ ...stack.route, components: [stack.component] }, stack.settings, {
    mapping: { batchSize: stack.mapping.batchSize, batchingWindowMs: stack.mapping.maximumBatchingWindowSeconds * 1000, maximumConcurrency: stack.mapping.maximumConcurrency ?? AWS_SCALING_POLLERS },
  });
  const interactive = simJobsOf(trace, "interactive");
  const spanMs = plan.interactive.durationMs;
  const idle = simulate(setup, interactive, { untilMs: spanMs + plan.drainMs });
  const landed = measured.landedMs;
  // The whole batch queued at the landing, the interactive trace as it ran; both measured after it.
  const batch = Array.from({ length: plan.batchJobs }, (_, i) => ({ id: `b${i}`, atMs: landed, promptTokens: plan.batchPromptTokens, maxTokens: plan.batchMaxTokens, lane: "batch" as const }));
  const beside = simulate(setup, [...batch, ...interactive], { untilMs: spanMs + plan.drainMs });
  const p95Of = (run: SimRun) => {
    const latencies = run.outcomes.filter((o) => o.job.lane === "interactive" && o.job.atMs >= landed).map((o) => (o.finishedMs ?? run.endMs) - o.job.atMs);
    return percentile(latencies, 0.95);
  };
  const windowTokens = beside.tokensBySecond.slice(Math.floor(landed / 1000), Math.floor(spanMs / 1000)).reduce((a, b) => a + b, 0);
  const interactiveTokens = beside.outcomes.filter((o) => o.job.lane === "interactive" && o.finishedMs !== undefined && o.finishedMs >= landed && o.finishedMs < spanMs).reduce((s, o) => s + o.completionTokens, 0);
  const drainRpm = (Math.max(0, windowTokens - interactiveTokens) * 60_000) / ((spanMs - landed) * plan.batchMaxTokens);
  const idleP95 = p95Of(idle);
  return {
    ...check({ throughput_rpm: drainRpm, p95_ms: p95Of(beside) }, { throughput_rpm: measured.drainRpm, p95_ms: measured.besideP95Ms }, performance.now() - started),
    engine_alone: null,
    idle_p95_ms: idleP95,
    measured_idle_p95_ms: measured.idleP95Ms,
    error_idle_p95: relativeError(idleP95, measured.idleP95Ms),
  };
}

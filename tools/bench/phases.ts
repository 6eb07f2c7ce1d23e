import type { Lane } from "#shared/core/lanes";
import type { Component, RouteCatalog } from "#shared/core/routes";
import { readingDelta } from "#local/request-meter";
import { startSageMakerEmulator } from "#local/sagemaker/server";
import { serverlessCost } from "./aws-cost.ts";
import { closedLoop, driveEngine, type EngineTarget } from "./engine-driver.ts";
import { simulatedClockAt } from "./gpu-sampler.ts";
import { holdMeasured } from "./hold-board.ts";
import { admissionLimit, succeededAt, turnoverThroughput } from "./metrics.ts";
import type { Outcome } from "./outcome.ts";
import { drivePipeline } from "./pipeline-driver.ts";
import type { PolicyStack } from "./policy-stack.ts";
import type { PromptBook } from "./prompts.ts";
import { gpuOverWindow, meanRequestTokens, summarizeRun, withGpuSamples, type RunResult } from "./run.ts";
import type { Scenario } from "./scenarios.ts";
import type { EngineClosedLoopReport } from "./report.ts";
import type { TraceRequest } from "./trace.ts";

export type ScenarioRun = { readonly scenario: Scenario; readonly trace: readonly TraceRequest[] };
/**
 * A batcher invocation during a run, ms after the trace started: [start, end (null: still running
 * when the run was over), messages delivered, Lambda's FunctionError or null, the lane that delivered them].
 */
export type InvocationSpan = readonly [startMs: number, endMs: number | null, records: number, error: string | null, lane: Lane];
/** A pipeline run's batcher invocations, and the wall-clock time of its trace's start (to line up with other logs). */
export type InvocationLog = { readonly trace_started_at: string; readonly invocations: readonly InvocationSpan[] };
export type RunOutput = { readonly result: RunResult; readonly outcomes: readonly Outcome[]; readonly batcher?: InvocationLog };

export const ENGINE_ALONE = "engine alone";

export type EngineCeiling = {
  /** Requests per minute at the admission limit: answers over whole turnovers (metrics.ts, turnoverThroughput). */
  readonly rpm: number;
  /** The same from the GPU's tokens per second over the window, over 512 per request. */
  readonly tokenRpm: number;
  /** The window's length in turnovers of the running batch. */
  readonly turnovers: number;
  readonly concurrency: number;
  /** Answers counted in the window. */
  readonly completed: number;
  readonly completedRpm: number;
  readonly fromS: number;
  readonly toS: number;
  readonly tokensPerS: number;
  readonly gpuBusy: number;
  readonly meanBatch: number;
};

/** The ceiling as the report gives it. */
export function closedLoopReport(ceiling: EngineCeiling): EngineClosedLoopReport {
  return {
    concurrency: ceiling.concurrency,
    completed: ceiling.completed,
    completed_rpm: ceiling.completedRpm,
    measured_from_s: ceiling.fromS,
    measured_to_s: ceiling.toS,
    measured_turnovers: ceiling.turnovers,
    token_rpm: ceiling.tokenRpm,
    tokens_per_s: ceiling.tokensPerS,
    gpu_busy: ceiling.gpuBusy,
    mean_batch: ceiling.meanBatch,
  };
}

/**
 * Clients of the closed loop: as many as a copy could ever run (max_sequences). The engine admits
 * what its KV cache holds (109 of 512 + 512 with reserve admission) and queues the rest, so that
 * a client that answers late (this process is shared) never leaves it short of work.
 */
export function closedLoopConcurrency(component: Component): number {
  return component.limits.max_sequences * Math.max(1, component.copies);
}

async function withEmulator<T>(catalog: RouteCatalog, use: (url: string) => Promise<T>): Promise<T> {
  const emulator = await startSageMakerEmulator({ catalog, port: 0, host: "127.0.0.1", timeScale: 1 });
  try {
    return await use(emulator.url);
  } finally {
    await emulator.close().catch(() => undefined);
  }
}

/**
 * The engine's ceiling, on an emulator of its own: a closed loop at its admission limit, 512+512.
 * Measured as the answers over whole turnovers within the window after the warm-up.
 */
export function engineCeiling(catalog: RouteCatalog, component: Component, options: { prompts: PromptBook; durationMs: number; warmupMs: number }): Promise<EngineCeiling> {
  return withEmulator(catalog, async (url) => {
    const target: EngineTarget = { sagemakerUrl: url, component };
    const concurrency = closedLoopConcurrency(component);
    const { result, gpu } = await withGpuSamples(url, component.name, async () => {
      const originMs = performance.now() + 100;
      const outcomes = await closedLoop(target, {
        prompts: options.prompts,
        concurrency,
        promptTokens: 512,
        maxTokens: 512,
        staggerMs: Math.min(10_000, options.warmupMs),
        durationMs: options.durationMs,
      });
      return { outcomes, originMs };
    });
    const window = gpuOverWindow(gpu, result.originMs + options.warmupMs, result.originMs + options.durationMs);
    const tokensPerS = window.simMs > 0 ? (window.tokens * 1000) / window.simMs : 0;
    // Answers over whole turnovers, as the policies' saturated runs are measured (run.ts).
    const tokenRpm = (tokensPerS * 60) / 512;
    const limit = admissionLimit(component.limits, 1024) * Math.max(1, component.copies);
    const turnoverMs = tokenRpm > 0 ? (limit * 60_000) / tokenRpm : options.durationMs - options.warmupMs;
    const onGpuClock = (a: number, b: number) => simulatedClockAt(gpu, result.originMs + b) - simulatedClockAt(gpu, result.originMs + a);
    const whole = turnoverThroughput(succeededAt(result.outcomes), options.warmupMs, options.durationMs, turnoverMs, onGpuClock);
    return {
      rpm: whole?.rpm ?? 0,
      tokenRpm,
      turnovers: whole?.turnovers ?? 0,
      concurrency,
      completed: whole?.completed ?? 0,
      completedRpm: whole?.rpm ?? 0,
      fromS: (whole?.fromMs ?? options.warmupMs) / 1000,
      toS: (whole?.toMs ?? options.durationMs) / 1000,
      tokensPerS,
      gpuBusy: window.busyFraction,
      meanBatch: window.meanBatch,
    };
  });
}

/** A batch drained by the engine alone: how long its last answer took from the moment the batch landed. */
export type EngineDrain = { readonly lines: number; readonly answered: number; readonly drained_in_s: number; readonly lines_per_min: number; readonly complete: boolean };

/**
 * `lines` requests straight to the engine, all there at once, on an emulator of its own: a closed
 * loop as wide as the copies run (closedLoopConcurrency), so the engine always has the batch's
 * next line waiting, until every one is answered or `timeoutMs` (issue 18 item 3: what a batch
 * file's drain through the pipeline is held against).
 */
export function engineDrain(catalog: RouteCatalog, component: Component, options: { prompts: PromptBook; lines: number; promptTokens: number; maxTokens: number; timeoutMs: number }): Promise<EngineDrain> {
  return withEmulator(catalog, async (url) => {
    const outcomes = await closedLoop(
      { sagemakerUrl: url, component },
      { prompts: options.prompts, concurrency: closedLoopConcurrency(component), promptTokens: options.promptTokens, maxTokens: options.maxTokens, staggerMs: 0, durationMs: options.timeoutMs, total: options.lines },
    );
    const answeredAt = succeededAt(outcomes);
    const drainedInS = Math.max(0, ...answeredAt) / 1000;
    return {
      lines: options.lines,
      answered: answeredAt.length,
      drained_in_s: drainedInS,
      lines_per_min: drainedInS > 0 ? (answeredAt.length * 60) / drainedInS : 0,
      complete: answeredAt.length === options.lines,
    };
  });
}

/** A scenario's trace straight to the engine, on an emulator of its own. */
export function runEngineTrace(catalog: RouteCatalog, component: Component, run: ScenarioRun, options: { prompts: PromptBook; ranWith?: readonly string[] }): Promise<RunOutput> {
  return withEmulator(catalog, async (url) => {
    const { scenario, trace } = run;
    const { result, gpu } = await withGpuSamples(url, component.name, () =>
      driveEngine({ sagemakerUrl: url, component }, trace, { prompts: options.prompts, untilMs: scenario.trace.durationMs + scenario.drainMs }),
    );
    const summary = summarizeRun({
      name: ENGINE_ALONE,
      scenario,
      component,
      outcomes: result.outcomes,
      originMs: result.originMs,
      runEndMs: result.endMs,
      gpu,
      ...(options.ranWith && { ranWith: options.ranWith }),
    });
    return { result: summary, outcomes: result.outcomes };
  });
}

/**
 * One policy on one scenario's trace, end to end. Afterwards the stack is emptied for the next
 * run; after its last run (`last`), whatever still runs is abandoned instead of waited for.
 */
export async function runPolicy(
  stack: PolicyStack,
  run: ScenarioRun,
  options: { prompts: PromptBook; ranWith: readonly string[]; last: boolean; gpuUsdPerJob: number },
): Promise<RunOutput> {
  const { scenario, trace } = run;
  const limit = admissionLimit(stack.component.limits, meanRequestTokens(trace)) * Math.max(1, stack.component.copies);
  const meteredFrom = stack.meter.read();
  const { result, gpu } = await withGpuSamples(stack.sagemakerUrl, stack.component.name, () =>
    drivePipeline(stack.target, trace, {
      prompts: options.prompts,
      untilMs: scenario.trace.durationMs + scenario.drainMs,
      // Saturated: once fewer wait than the engine can hold, the steady part is over.
      stopBelowUnanswered: scenario.kind === "saturated" ? Math.ceil(1.2 * limit) : undefined,
    }),
  );
  const summary = summarizeRun({
    name: stack.policy.name,
    scenario,
    component: stack.component,
    outcomes: result.outcomes,
    originMs: result.originMs,
    runEndMs: result.endMs,
    gpu,
    ranWith: options.ranWith,
  });
  // A run's requests end with its batchers' (their messages are deleted as they end), unless
  // some jobs are still unanswered (a saturated run stops early): then with its drive.
  const answered = result.outcomes.every((o) => o.status !== "unfinished");
  if (answered) await invocationsEnded(stack, METER_WAIT_MS);
  const accepted = result.outcomes.filter((o) => o.jobId !== undefined).length;
  const serverless = { kind: "single" as const, complete: answered, ...serverlessCost(readingDelta(stack.meter.read(), meteredFrom), accepted, options.gpuUsdPerJob) };
  // Read before the stack is abandoned: what the hold measured on the route over the run.
  const hold = stack.policy.engine === "static" ? await holdMeasured(stack.stack, stack.route.name).catch(() => null) : null;
  if (options.last) await stack.abandon();
  else {
    const unanswered = result.outcomes.flatMap((o) => (o.status === "unfinished" && o.jobId !== undefined ? [o.jobId] : []));
    if (result.outcomes.some((o) => o.status === "unfinished")) await stack.settle(unanswered, 120_000);
  }
  return { result: { ...summary, hold, serverless }, outcomes: result.outcomes, batcher: invocationLog(stack, result.originMs) };
}

/** How long a run waits for its batchers to end before its requests are read. */
const METER_WAIT_MS = 30_000;

/** Resolves once every batcher invocation the stack started has ended, or at the deadline. */
async function invocationsEnded(stack: PolicyStack, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (stack.invocations.some((i) => i.endedAt === undefined) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
}

/** The stack's batcher invocations that had not ended by `originMs` (performance.now()), ms after it. */
export function invocationLog(stack: PolicyStack, originMs: number): InvocationLog {
  const originAt = performance.timeOrigin + originMs;
  const invocations = stack.invocations
    .filter((i) => (i.endedAt ?? Number.POSITIVE_INFINITY) >= originAt)
    .map((i): InvocationSpan => [Math.round(i.startedAt - originAt), i.endedAt === undefined ? null : Math.round(i.endedAt - originAt), i.records, i.error ?? null, i.lane]);
  return { trace_started_at: new Date(originAt).toISOString(), invocations };
}

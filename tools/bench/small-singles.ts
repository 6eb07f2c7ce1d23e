import { gpuHourPrice, type Component, type RouteCatalog } from "#shared/core/routes";
import { gpuUsdPerJob } from "./aws-cost.ts";
import { monotonicUs } from "./cpu-capture.ts";
import { runEngineTrace, runPolicy, type ScenarioRun } from "./phases.ts";
import type { PolicyStack } from "./policy-stack.ts";
import type { PromptBook } from "./prompts.ts";
import { nextRampRpm, type RampPlan, stepVerdict, sustainedRpm } from "./ramp.ts";
import type { SinglesStep } from "./route-summary.ts";
import type { Mode, Scenario } from "./scenarios.ts";
import { generateTrace } from "./trace.ts";

/**
 * Issue 18 item 3: single jobs on the 1B route at the highest rate the stack sustains. Each step
 * is a Poisson trace at one rate, straight to the engine (on an emulator of its own), then
 * through the pipeline; the ramp goes on while steps hold (ramp.ts).
 */
export const SMALL_SINGLES = "small-singles";

export type SinglesPlan = { readonly ramp: RampPlan; readonly stepMs: number; readonly drainMs: number; readonly promptTokens: number; readonly maxTokens: number };

export function singlesPlan(mode: Mode): SinglesPlan {
  // Short jobs, so that the stack, not the GPU, is what a step loads: the 1B copy answers
  // thousands of 128+64 a minute in well under a second each.
  const quick = mode === "quick";
  return {
    ramp: { startRpm: quick ? 600 : 1_000, factor: 1.5, maxRpm: quick ? 6_000 : 8_000, refineSteps: quick ? 1 : 2, resolution: 0.05 },
    stepMs: quick ? 20_000 : 60_000,
    drainMs: quick ? 15_000 : 20_000,
    promptTokens: 128,
    maxTokens: 64,
  };
}

/** A step as it ran: its numbers, and when the pipeline ran it on the profiles' clock. */
export type RanStep = SinglesStep & { readonly fromUs: number; readonly toUs: number };

export async function runSmallSingles(
  stack: PolicyStack,
  plan: SinglesPlan,
  context: { readonly catalog: RouteCatalog; readonly component: Component; readonly prompts: PromptBook; readonly seed: number; readonly log: (line: string) => void },
): Promise<{ steps: RanStep[]; sustainedRpm: number | undefined }> {
  const steps: RanStep[] = [];
  const { component } = context;
  for (let rpm = nextRampRpm(plan.ramp, steps); rpm !== undefined; rpm = nextRampRpm(plan.ramp, steps)) {
    const scenario: Scenario = {
      name: `${SMALL_SINGLES}-${rpm}`,
      title: `single jobs at ${rpm}/min`,
      kind: "latency",
      trace: { seed: context.seed + steps.length, durationMs: plan.stepMs, arrivals: { kind: "poisson", rpm }, lengths: { kind: "fixed", promptTokens: plan.promptTokens, maxTokens: plan.maxTokens } },
      drainMs: plan.drainMs,
      warmupMs: 0,
      targeted: true,
    };
    const run: ScenarioRun = { scenario, trace: generateTrace(scenario.trace) };
    context.log(`${SMALL_SINGLES}: ${rpm}/min, ${run.trace.length} jobs, the engine alone then d-adaptive`);
    const engine = await runEngineTrace(context.catalog, component, run, { prompts: context.prompts });
    const fromUs = monotonicUs();
    // The GPU's cost per job at this step's rate: what these jobs cost on a copy serving only them.
    const gpuUsd = gpuUsdPerJob(gpuHourPrice(component), component.copies * component.accelerators_per_copy, rpm);
    const ran = await runPolicy(stack, run, { prompts: context.prompts, ranWith: [], last: false, gpuUsdPerJob: gpuUsd }).catch((error: unknown) => error as Error);
    // The profiles' window is the step's drive: not the clean-up after it (cancels, purges).
    const toUs = Math.min(monotonicUs(), fromUs + (plan.stepMs + plan.drainMs) * 1000);
    if (ran instanceof Error) {
      // The stack did not settle after the step: it cannot run another.
      steps.push({ ...emptyStep(rpm, run.trace.length, engine.result.p95_ms), reason: `the stack did not recover: ${ran.message.split("\n")[0]}`, fromUs, toUs });
      break;
    }
    const r = ran.result;
    const verdict = stepVerdict({ rpm, requests: r.requests, shed: r.rejected, failed: r.failed, unfinished: r.unfinished, p95Ms: r.p95_ms, engineP95Ms: engine.result.p95_ms });
    steps.push({
      rpm,
      held: verdict.held,
      reason: verdict.reason,
      requests: r.requests,
      shed: r.rejected,
      failed: r.failed,
      unfinished: r.unfinished,
      p50_ms: r.p50_ms,
      p95_ms: r.p95_ms,
      engine_p95_ms: engine.result.p95_ms,
      served_rpm: r.throughput_rpm,
      aws_requests_per_job: r.serverless?.requests_per_job ?? null,
      machine_load: r.machine_load,
      fromUs,
      toUs,
    });
    context.log(`  ${verdict.held ? "held" : "BROKE"}: ${verdict.reason}`);
  }
  return { steps, sustainedRpm: sustainedRpm(steps) };
}

function emptyStep(rpm: number, requests: number, engineP95Ms: number): Omit<SinglesStep, "reason"> {
  return { rpm, held: false, requests, shed: 0, failed: 0, unfinished: requests, p50_ms: Number.NaN, p95_ms: Number.NaN, engine_p95_ms: engineP95Ms, served_rpm: 0, aws_requests_per_job: null, machine_load: 0 };
}

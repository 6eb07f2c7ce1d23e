import { setTimeout as delay } from "node:timers/promises";
import { loadRouteCatalog } from "#shared/config";
import { gpuHourPrice } from "#shared/core/routes";
import type { Logger } from "#local/log";
import { type Stack, startStack } from "#local/stack";
import { compressed, type DiurnalPlan, REAL_DELAYS } from "./diurnal-plan.ts";
import { type CopySample, type FleetReport, summarizeFleet } from "./diurnal-summary.ts";
import { drivePipeline, type PipelineTarget } from "./pipeline-driver.ts";
import { putSettings, routeComponents, warmUp, writeRoutesVariant } from "./policy-stack.ts";
import type { PromptBook } from "./prompts.ts";
import type { TargetCheck } from "./targets.ts";
import { sleepUntil } from "./schedule.ts";
import { generateTrace, offeredRpm, type TraceRequest } from "./trace.ts";

/**
 * Runs the diurnal scenario: the compressed day through an embedded stack whose component
 * autoscales, then through one with a fixed fleet sized for the peak, each with the machine to
 * itself; the cost of each is the GPU-hours its copies held (warming and draining included).
 */

export type DiurnalReport = {
  readonly name: "diurnal";
  readonly title: string;
  readonly seed: number;
  readonly compression: number;
  readonly day_s: number;
  readonly requests: number;
  readonly offered_rpm_mean: number;
  readonly peak_rpm: number;
  /**
   * The AWS side's delays as deployed and as the run had them (seconds). The warming recheck is an
   * SQS delay, whole seconds: at least 1 s however strong the compression.
   */
  readonly delays: Readonly<Record<string, { readonly real_s: number; readonly compressed_s: number }>>;
  readonly fleets: readonly (FleetReport & {
    readonly copies_over_time: readonly (readonly [number, number, number])[];
    readonly scaling_activities: readonly unknown[];
    readonly machine_load: number;
  })[];
  /** autoscaled cost per million tokens over the fixed fleet's. */
  readonly cost_ratio: number | null;
};

export type DiurnalContext = {
  readonly projectDir: string;
  readonly outDir: string;
  readonly model: string;
  readonly runId: string;
  readonly prompts: PromptBook;
  readonly log: (line: string) => void;
  readonly stackLog?: Logger;
};

type Fleet = "autoscaled" | "fixed";

export async function runDiurnal(plan: DiurnalPlan, context: DiurnalContext): Promise<DiurnalReport> {
  const trace = generateTrace(plan.trace);
  for (const r of trace) context.prompts.prompt(r.promptTokens, r.index);
  const fleets: DiurnalReport["fleets"][number][] = [];
  for (const fleet of ["autoscaled", "fixed"] as const) {
    context.log(`diurnal, ${fleet} fleet: ${trace.length} requests over a day of ${(plan.dayMs / 1000).toFixed(0)} s (x${plan.compression})`);
    const report = await runFleet(plan, fleet, trace, context);
    context.log(
      `  ${fleet}: $${report.cost_per_million_tokens?.toFixed(2) ?? "-"}/1M tokens, ${report.mean_copies.toFixed(2)} copies on average, p50 ${(report.p50_ms / 1000).toFixed(1)} s, p95 ${(report.p95_ms / 1000).toFixed(1)} s, ${report.errors} errors, ${report.warming.jobs} waited for warming`,
    );
    fleets.push(report);
  }
  const [autoscaled, fixed] = fleets;
  const ratio = autoscaled?.cost_per_million_tokens != null && fixed?.cost_per_million_tokens != null ? autoscaled.cost_per_million_tokens / fixed.cost_per_million_tokens : null;
  return {
    name: "diurnal",
    title: `a day compressed ${plan.compression}x: idle, quiet night, ramp, peak at ${plan.peakRpm} rpm, afternoon, fall, idle; 512+512`,
    seed: plan.trace.seed,
    compression: plan.compression,
    day_s: plan.dayMs / 1000,
    requests: trace.length,
    offered_rpm_mean: offeredRpm(plan.trace.arrivals, plan.dayMs),
    peak_rpm: plan.peakRpm,
    delays: Object.fromEntries(
      [
        ...Object.entries(REAL_DELAYS),
        ["cloudwatch_high_resolution_period_seconds", 10],
        ["cloudwatch_period_seconds", 60],
        ["target_tracking_scale_in_after_seconds", 15 * 60],
      ].map(([name, real]) => [name, { real_s: real as number, compressed_s: name === "warming_recheck_seconds" ? warmingRecheckSeconds(plan) : compressed(plan, real as number) }]),
    ),
    fleets,
    cost_ratio: ratio,
  };
}

async function runFleet(plan: DiurnalPlan, fleet: Fleet, trace: readonly TraceRequest[], context: DiurnalContext): Promise<DiurnalReport["fleets"][number]> {
  const routesFile = await writeRoutesVariant(context.projectDir, context.outDir, `routes.diurnal-${fleet}.yml`, `with ${context.model} on a ${fleet} fleet`, (raw) => {
    for (const component of routeComponents(raw, context.model)) {
      if (fleet === "fixed") {
        component.copies = plan.fixedCopies;
        delete component.autoscaling;
      } else {
        // The day starts idle, at zero copies: the first request of the night wakes the component.
        component.copies = plan.autoscaling.min_copies;
        component.autoscaling = { ...plan.autoscaling };
      }
    }
  });
  const component = loadRouteCatalog(routesFile).routes.get(context.model)?.components[0];
  if (!component) throw new Error(`${routesFile} has no component for ${context.model}`);
  const stack = await startStack({
    projectDir: context.projectDir,
    stage: `bench${context.runId}${fleet === "fixed" ? "f" : "s"}`,
    dataDir: undefined,
    timeScale: 1,
    routesFile,
    autoscaling: fleet === "autoscaled",
    scalingTimeCompression: plan.compression,
    ...(context.stackLog && { log: context.stackLog }),
  });
  try {
    const { http, websocket } = stack.endpoints;
    const emulator = stack.sagemaker;
    if (!http || !websocket || !emulator) throw new Error("the stack runs without its HTTP, WebSocket or SageMaker endpoint");
    const target: PipelineTarget = { http, websocket, apiKey: stack.apiKey, model: context.model };
    await putSettings(target, { warming_recheck_seconds: warmingRecheckSeconds(plan) });
    await warmUp(target, context.prompts);
    // The warm-up woke the autoscaled component: the day starts once it is back at its minimum.
    await untilCopies(stack, component.name, fleet === "fixed" ? plan.fixedCopies : plan.autoscaling.min_copies, 120_000);
    const emulatorAtStart = emulator.stats().nowMs;
    const wallAtStart = performance.now();
    const { outcomes, originMs, endMs } = await drivePipeline(target, trace, { prompts: context.prompts, untilMs: plan.dayMs + plan.drainMs });
    // The day is over when its idle stretch is, not at the last answer: what the fleet holds
    // meanwhile (an autoscaled one scaling in to zero) is part of its cost.
    await sleepUntil(originMs + plan.dayMs);
    const stats = componentStats(stack, component.name);
    // The emulator's clock runs at wall speed (time scale 1): shift its instants to the trace's.
    const shift = -emulatorAtStart + (wallAtStart - originMs);
    const samples: CopySample[] = stats.copyCountSeries.map((c) => ({ atMs: c.atMs + shift, billed: c.placed, serving: c.serving }));
    const summary = summarizeFleet(fleet, outcomes, samples, { fromMs: 0, toMs: Math.max(plan.dayMs, endMs) }, { pricePerGpuHour: gpuHourPrice(component), gpusPerCopy: component.accelerators_per_copy }, plan.latencyObjectiveMs);
    return {
      ...summary,
      copies_over_time: samples.map((s) => [Math.round(s.atMs), s.billed, s.serving] as const),
      scaling_activities: stats.scalingActivities.map((a) => ({ ...a, atMs: Math.round(a.atMs + shift) })),
      machine_load: (await import("node:os")).loadavg()[0] ?? 0,
    };
  } finally {
    await stack.stop();
  }
}

/** The batcher's warming recheck in the compressed day: an SQS delay, so whole seconds and at least 1. */
const warmingRecheckSeconds = (plan: DiurnalPlan) => Math.max(1, Math.round(compressed(plan, REAL_DELAYS.warming_recheck_seconds)));

type ComponentView = {
  readonly copyCountSeries: readonly { readonly atMs: number; readonly placed: number; readonly serving: number }[];
  readonly scalingActivities: readonly { readonly atMs: number }[];
  readonly currentCopies: number;
  readonly desiredCopies: number;
};

function componentStats(stack: Stack, component: string): ComponentView {
  const stats = stack.sagemaker?.stats();
  const found = stats?.components.find((c) => c.component === component);
  if (!stats || !found) throw new Error(`the emulator has no component ${component}`);
  return { ...found, scalingActivities: (stats.scalingActivities ?? []).filter((a) => a.component === component) };
}

/** Waits until the component serves exactly `copies` and warms none, or fails after `timeoutMs`. */
async function untilCopies(stack: Stack, component: string, copies: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const view = componentStats(stack, component);
    if (view.currentCopies === copies && view.desiredCopies === copies) return;
    if (performance.now() > deadline) throw new Error(`${component} did not settle at ${copies} copies within ${timeoutMs} ms (serving ${view.currentCopies}, desired ${view.desiredCopies})`);
    await delay(200);
  }
}

/** The targets for the day: at least 35% cheaper per million tokens, no errors, every job that arrived at zero answered. */
export function diurnalTargets(report: DiurnalReport): TargetCheck[] {
  const autoscaled = report.fleets.find((f) => f.name === "autoscaled");
  const fixed = report.fleets.find((f) => f.name === "fixed");
  if (!autoscaled || !fixed) return [];
  const ratio = report.cost_ratio ?? Number.POSITIVE_INFINITY;
  return [
    {
      name: "diurnal_cost_vs_fixed",
      target: "autoscaled <= 0.65x the fixed fleet's cost per million tokens",
      measured: `$${autoscaled.cost_per_million_tokens?.toFixed(2) ?? "-"} / $${fixed.cost_per_million_tokens?.toFixed(2) ?? "-"} = ${ratio.toFixed(2)}x`,
      value: ratio,
      met: ratio <= 0.65,
    },
    {
      name: "diurnal_errors",
      target: "0 errors in either fleet",
      measured: `autoscaled ${autoscaled.errors}, fixed ${fixed.errors}`,
      value: autoscaled.errors + fixed.errors,
      met: autoscaled.errors + fixed.errors === 0,
    },
    {
      name: "diurnal_answered_at_zero",
      target: "every job that arrived at zero copies answered",
      measured: `${autoscaled.warming.answered_at_zero} of ${autoscaled.warming.arrived_at_zero}`,
      value: autoscaled.warming.arrived_at_zero - autoscaled.warming.answered_at_zero,
      met: autoscaled.warming.arrived_at_zero > 0 && autoscaled.warming.answered_at_zero === autoscaled.warming.arrived_at_zero,
    },
  ];
}

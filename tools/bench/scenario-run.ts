import type { Component, RouteCatalog } from "#shared/core/routes";
import type { Outcome } from "./outcome.ts";
import { ENGINE_ALONE, type InvocationLog, runEngineTrace, runPolicy, type RunOutput, type ScenarioRun } from "./phases.ts";
import type { PolicyStack } from "./policy-stack.ts";
import { predictRun } from "./prediction.ts";
import type { PromptBook } from "./prompts.ts";
import type { ScenarioReport } from "./report.ts";
import { COMPARED_WITH_ENGINE, type Mode, slots } from "./scenarios.ts";
import { offeredRpm } from "./trace.ts";

export type ScenarioContext = {
  readonly catalog: RouteCatalog;
  readonly component: Component;
  readonly stacks: ReadonlyMap<string, PolicyStack>;
  /** The policies, in report order. */
  readonly policies: readonly string[];
  readonly mode: Mode;
  readonly prompts: PromptBook;
  /** The stacks' last scenario: what still runs afterwards is abandoned, not waited for. */
  readonly last: boolean;
  readonly log: (line: string) => void;
  /** The GPU's cost per job at the engine's ceiling, beside which the serverless cost is read. */
  readonly gpuUsdPerJob: number;
};

/**
 * One scenario: its trace through every policy, group by group (slots), and straight to the
 * engine beside the policy it is compared with. Returns the scenario's report and, per run,
 * what happened to each request (for the curves).
 */
export async function runScenario(
  run: ScenarioRun,
  context: ScenarioContext,
): Promise<{ report: ScenarioReport; outcomes: Map<string, readonly Outcome[]>; invocations: Map<string, InvocationLog> }> {
  const { scenario } = run;
  const results = new Map<string, RunOutput>();
  let engineRun: RunOutput | undefined;
  const groups = slots(scenario, context.mode, context.policies);
  const withEngine = groups.findIndex((g) => g.includes(COMPARED_WITH_ENGINE));
  if (withEngine < 0) groups.unshift([]);
  for (const [g, group] of groups.entries()) {
    const members = group.map((name) => {
      const stack = context.stacks.get(name);
      if (!stack) throw new Error(`no stack for ${name}`);
      return stack;
    });
    const engineHere = g === Math.max(0, withEngine);
    const together = engineHere ? [ENGINE_ALONE, ...group] : group;
    context.log(`${scenario.name}: ${together.join(" + ")}, ${run.trace.length} requests${together.length > 1 ? " each, at once" : ""}`);
    const others = (name: string) => together.filter((n) => n !== name);
    const [engineOutput, ...outputs] = await Promise.all([
      engineHere ? runEngineTrace(context.catalog, context.component, run, { prompts: context.prompts, ranWith: others(ENGINE_ALONE) }) : undefined,
      ...members.map((stack) => runPolicy(stack, run, { prompts: context.prompts, ranWith: others(stack.policy.name), last: context.last, gpuUsdPerJob: context.gpuUsdPerJob })),
    ]);
    engineRun ??= engineOutput;
    members.forEach((stack, i) => results.set(stack.policy.name, outputs[i] as RunOutput));
  }
  if (!engineRun) throw new Error(`no engine run for ${scenario.name}`);
  const ordered = context.policies.flatMap((name) => {
    const r = results.get(name);
    const stack = context.stacks.get(name);
    return r && stack ? [[name, withPrediction(stack, run, r, engineRun.result)] as const] : [];
  });
  for (const [name, r] of [[ENGINE_ALONE, engineRun] as const, ...ordered]) {
    const hold = r.result.hold ? `, latency factor ${r.result.hold.latency_factor?.toFixed(3) ?? "-"}, arrivals ${r.result.hold.arrivals_per_second?.toFixed(2) ?? "-"}/s` : "";
    const p = r.result.prediction;
    const predicted = p ? `; predicted ${p.throughput_rpm.toFixed(1)} req/min (${percent(p.error_throughput)}), p95 ${(p.p95_ms / 1000).toFixed(2)} s (${percent(p.error_p95)})` : "";
    const cost = r.result.serverless;
    const aws = cost ? `; AWS ${cost.requests_per_job.toFixed(1)} requests/job, $${cost.usd_per_job.total.toExponential(2)}/job = ${(100 * cost.share_of_gpu).toFixed(1)}% of the GPU's` : "";
    context.log(`  ${name}: ${r.result.throughput_rpm.toFixed(1)} req/min, p50 ${(r.result.p50_ms / 1000).toFixed(2)} s, p95 ${(r.result.p95_ms / 1000).toFixed(2)} s, fill ${r.result.batch_fill.toFixed(3)}${hold}${predicted}${aws}`);
  }
  return {
    outcomes: new Map([[ENGINE_ALONE, engineRun.outcomes], ...ordered.map(([name, r]) => [name, r.outcomes] as const)]),
    invocations: new Map(ordered.flatMap(([name, r]) => (r.batcher ? [[name, r.batcher] as const] : []))),
    report: {
      name: scenario.name,
      title: scenario.title,
      kind: scenario.kind,
      targeted: scenario.targeted,
      seed: scenario.trace.seed,
      offered_rpm: offeredRpm(scenario.trace.arrivals, scenario.trace.durationMs),
      duration_s: scenario.trace.durationMs / 1000,
      requests: run.trace.length,
      engine_direct_p50_ms: engineRun.result.p50_ms,
      engine_direct: engineRun.result,
      policies: ordered.map(([, r]) => r.result),
    },
  };
}

/** batchline's own policies (d) carry the tuning simulator's prediction of the run. */
function withPrediction(stack: PolicyStack, run: ScenarioRun, output: RunOutput, engine: RunOutput["result"]): RunOutput {
  if (!stack.policy.name.startsWith("d-")) return output;
  return { ...output, result: { ...output.result, prediction: predictRun(stack, run.scenario, run.trace, output.result, engine) } };
}

const percent = (share: number) => `${share >= 0 ? "+" : ""}${(100 * share).toFixed(1)}%`;

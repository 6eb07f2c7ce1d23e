import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadRouteCatalog } from "#shared/config";
import { gpuHourPrice, type Component, type Route, type RouteCatalog } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import type { Logger } from "#local/log";
import { gpuUsdPerJob } from "./aws-cost.ts";
import { cpuProfNodeOptions, profileThisProcess, readProfiles } from "./cpu-capture.ts";
import { busiestFirst, summarizeProfile } from "./cpu-profile.ts";
import { closedLoopReport, engineCeiling } from "./phases.ts";
import { policyNamed } from "./policies.ts";
import { type PolicyStack, startPolicyStacks } from "./policy-stack.ts";
import { promptBook, type PromptBook } from "./prompts.ts";
import { P95_OVER_ENGINE_BOUND_MS } from "./ramp.ts";
import type { GqaSaturatedReport, RouteScenariosReport, SmallBatchFileReport, SmallSinglesReport } from "./route-summary.ts";
import { runScenario } from "./scenario-run.ts";
import { GQA_MODEL, GQA_SATURATED, gqaSaturatedScenario, type Mode } from "./scenarios.ts";
import { runSmallBatchFile, SMALL_BATCH_FILE, smallBatchFilePlan } from "./small-batch-file.ts";
import { runSmallSingles, SMALL_SINGLES, singlesPlan } from "./small-singles.ts";
import { generateTrace } from "./trace.ts";

/**
 * The routes beside the bench's 7B one (issue 15 item 8, issue 18 item 3): each scenario on a
 * d-adaptive stack of its own, started when the 7B stacks are gone, beside the engine alone on
 * the same route. Selected with --scenarios like the others.
 */
export const ROUTE_SCENARIOS = [GQA_SATURATED, SMALL_BATCH_FILE, SMALL_SINGLES] as const;
export type RouteScenarioName = (typeof ROUTE_SCENARIOS)[number];
export const SMALL_MODEL = "llama-3-1b";
const ADAPTIVE = "d-adaptive";

export type RouteContext = {
  readonly projectDir: string;
  readonly outDir: string;
  readonly runId: string;
  readonly mode: Mode;
  readonly seed: number;
  readonly log: (line: string) => void;
  readonly stackLog: Logger;
};

type OnRoute = { readonly catalog: RouteCatalog; readonly route: Route; readonly component: Component; readonly prompts: PromptBook };

function onRoute(projectDir: string, model: string): OnRoute {
  const catalog = loadRouteCatalog(join(projectDir, "infra", "routes.yml"));
  const route = catalog.routes.get(model);
  const component = route?.components[0];
  if (!route || !component) throw new Error(`infra/routes.yml has no route ${model} with a component`);
  // Prompts of exactly their length by the route's own tokenizer.
  return { catalog, route, component, prompts: promptBook(tokenCounter(route.tokenizer)) };
}

export async function runRouteScenarios(wanted: readonly RouteScenarioName[], context: RouteContext): Promise<RouteScenariosReport> {
  return {
    gqa_saturated: wanted.includes(GQA_SATURATED) ? await gqaSaturated(context) : null,
    small_batch_file: wanted.includes(SMALL_BATCH_FILE) ? await smallBatchFile(context) : null,
    small_singles: wanted.includes(SMALL_SINGLES) ? await smallSingles(context) : null,
  };
}

/** A d-adaptive stack for `model` alone on the machine, for `use`, stopped afterwards however it ends. */
async function withStack<T>(context: RouteContext, model: string, letter: string, prompts: PromptBook, use: (stack: PolicyStack) => Promise<T>, offlineNodeOptions?: string): Promise<T> {
  context.log(`starting a d-adaptive stack for ${model}`);
  // Tried twice, as the 7B stacks are: a port picked as free can be taken before osls binds it.
  const started = new Map<string, PolicyStack>();
  await startPolicyStacks([policyNamed(ADAPTIVE)], {
    runId: `${context.runId}${letter}`,
    atOnce: 1,
    into: started,
    onLine: context.log,
    projectDir: context.projectDir,
    model,
    // d-adaptive runs the rolling engine: the static routes file is not read.
    staticRoutesFile: join(context.projectDir, "infra", "routes.yml"),
    prompts,
    log: context.stackLog,
    ...(offlineNodeOptions !== undefined && { offlineNodeOptions }),
  }).catch(async (error: unknown) => {
    await Promise.all([...started.values()].map((s) => s.stop().catch(() => undefined)));
    throw error;
  });
  const stack = started.get(ADAPTIVE);
  if (!stack) throw new Error(`no d-adaptive stack for ${model}`);
  try {
    return await use(stack);
  } finally {
    await stack.stop().catch((error: unknown) => context.log(`stopping ${model}'s stack: ${String(error)}`));
  }
}

async function gqaSaturated(context: RouteContext): Promise<GqaSaturatedReport> {
  const { catalog, component, prompts } = onRoute(context.projectDir, GQA_MODEL);
  const scenario = gqaSaturatedScenario(context.mode, context.seed);
  const trace = generateTrace(scenario.trace);
  for (const r of trace) prompts.prompt(r.promptTokens, r.index);
  const quick = context.mode === "quick";
  context.log(`${GQA_SATURATED}: the engine alone's ceiling on ${GQA_MODEL}, a closed loop at its admission limit`);
  const ceiling = await engineCeiling(catalog, component, { prompts, durationMs: quick ? 40_000 : 90_000, warmupMs: quick ? 15_000 : 20_000 });
  context.log(`  ${ceiling.rpm.toFixed(1)} req/min over ${ceiling.turnovers.toFixed(1)} turnovers (${ceiling.concurrency} in flight, GPU busy ${ceiling.gpuBusy.toFixed(2)})`);
  const gpus = component.copies * component.accelerators_per_copy;
  const { report } = await withStack(context, GQA_MODEL, "g", prompts, (stack) =>
    runScenario(
      { scenario, trace },
      { catalog, component, stacks: new Map([[ADAPTIVE, stack]]), policies: [ADAPTIVE], mode: context.mode, prompts, last: true, log: context.log, gpuUsdPerJob: gpuUsdPerJob(gpuHourPrice(component), gpus, ceiling.rpm) },
    ),
  );
  return { model: GQA_MODEL, component: component.name, copies: component.copies, engine_direct_rpm: ceiling.rpm, engine_direct_closed_loop: closedLoopReport(ceiling), scenario: report };
}

async function smallBatchFile(context: RouteContext): Promise<SmallBatchFileReport> {
  const { catalog, component, prompts } = onRoute(context.projectDir, SMALL_MODEL);
  const gpus = component.copies * component.accelerators_per_copy;
  return withStack(context, SMALL_MODEL, "f", prompts, (stack) =>
    runSmallBatchFile(stack, smallBatchFilePlan(context.mode), { catalog, prompts, outDir: context.outDir, log: context.log, gpuUsdPerJobAt: (rpm) => gpuUsdPerJob(gpuHourPrice(component), gpus, rpm) }),
  );
}

async function smallSingles(context: RouteContext): Promise<SmallSinglesReport> {
  const { catalog, component, prompts } = onRoute(context.projectDir, SMALL_MODEL);
  const plan = singlesPlan(context.mode);
  const profileDir = join(context.outDir, "cpu-profiles");
  await rm(profileDir, { recursive: true, force: true });
  await mkdir(profileDir, { recursive: true });
  const ran = await withStack(
    context,
    SMALL_MODEL,
    "s",
    prompts,
    async (stack) => {
      const profiler = await profileThisProcess();
      const singles = await runSmallSingles(stack, plan, { catalog, component, prompts, seed: context.seed + 20, log: context.log }).catch(async (error: unknown) => {
        await profiler.stop().catch(() => undefined);
        throw error;
      });
      return { ...singles, bench: await profiler.stop() };
    },
    // osls offline writes its profile when it exits, once the stack is stopped.
    cpuProfNodeOptions(profileDir),
  );
  // The highest rate run: where the time goes when the stack is pushed hardest.
  const top = ran.steps.toSorted((a, b) => b.rpm - a.rpm)[0];
  const window = top && { fromUs: top.fromUs, toUs: top.toUs };
  const offline = await readProfiles(profileDir);
  // Beside osls's, for a flame chart of it too.
  await writeFile(join(profileDir, "bench-process.json"), JSON.stringify(ran.bench));
  const profiles = [{ name: "bench process (stores, emulator, pollers, front door, clients)", profile: ran.bench }, ...offline.map((p) => ({ name: `osls offline ${p.name} (HTTP and WebSocket APIs, functions)`, profile: p.profile }))];
  // A process that was not running during the step (an osls that failed to start and was tried again) has nothing to say.
  const summaries = window ? busiestFirst(profiles.map((p) => summarizeProfile(p.name, p.profile, window)).filter((p) => p.window_ms > 0)) : [];
  return {
    model: SMALL_MODEL,
    component: component.name,
    prompt_tokens: plan.promptTokens,
    max_tokens: plan.maxTokens,
    step_s: plan.stepMs / 1000,
    p95_bound_over_engine_ms: P95_OVER_ENGINE_BOUND_MS,
    steps: ran.steps.map(({ fromUs: _from, toUs: _to, ...step }) => step),
    sustained_rpm: ran.sustainedRpm ?? null,
    profiled_rpm: top?.rpm ?? null,
    cpu_profile: summaries,
  };
}

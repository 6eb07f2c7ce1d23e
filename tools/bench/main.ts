// `npm run bench`: the embedded stack end to end (HTTP submit → WebSocket result) under
// reproducible traces, every batching policy side by side with the engine driven alone.
//
//   npm run bench                 full run (about an hour on 2 cores, the diurnal day included)
//   npm run bench -- --quick      the same scenarios, shorter (about 25 minutes; 8 without the day)
//   npm run bench -- --micro      only the micro-benchmark of the packing and window code
//   options: --seed N, --policies a,d, --scenarios poisson-400,saturated,batch-lines,lanes,diurnal,
//            (the 8B and 1B routes, on stacks of their own) gqa-saturated,small-batch-file,small-singles,
//            --route-settings '{"interactive_slowdown_percent":50}' (over every policy's settings)
//
// Writes bench-results/latest.json (schema in the README, "Benchmark"), latest.txt and SVG curves.
import { mkdir } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadRouteCatalog } from "#shared/config";
import { defaultRouteSettings, type RouteSettings } from "#shared/core/route-settings";
import { gpuHourPrice, type Route } from "#shared/core/routes";
import { consoleLogger } from "#local/log";
import { gpuUsdPerJob, serverlessTargets } from "./aws-cost.ts";
import { admissionLimit } from "./metrics.ts";
import { runMicro, type MicroResult } from "./micro.ts";
import type { Outcome } from "./outcome.ts";
import { closedLoopReport, type EngineCeiling, engineCeiling, type ScenarioRun } from "./phases.ts";
import { type Policy, POLICIES, policyNamed } from "./policies.ts";
import { type PolicyStack, startPolicyStacks, writeStaticRoutesFile } from "./policy-stack.ts";
import { promptBook } from "./prompts.ts";
import { type BenchReport, type PolicyReport, type ScenarioReport } from "./report.ts";
import { type Invocations, writeOutputs } from "./outputs.ts";
import { ROUTE_SCENARIOS, runRouteScenarios } from "./route-scenarios.ts";
import { type RouteScenariosReport, routeTargets } from "./route-summary.ts";
import { runScenario } from "./scenario-run.ts";
import { type Mode, scenarios as scenarioList } from "./scenarios.ts";
import { type DiurnalReport, diurnalTargets, runDiurnal } from "./diurnal.ts";
import { diurnalPlan } from "./diurnal-plan.ts";
import { aboveEngineCeiling, checkTargets, engineCeilingCheck, ENGINE_CEILING_TOLERANCE } from "./targets.ts";
import { generateTrace } from "./trace.ts";
import { LANES_SCENARIO, lanesPlan, runLanes } from "./lanes.ts";
import { BATCH_LINES_SCENARIO, type BatchLinesReport, batchLinesPlan, runBatchLines } from "./batch-lines.ts";
import { lanesTargets, type LanesReport } from "./lanes-summary.ts";

const MODEL = "llama-2-7b";
const STARTING_AT_ONCE = 3;
const DEFAULT_SEED = 20261127;
/** The compressed day runs on stacks of its own, after the policies' scenarios. */
const DIURNAL = "diurnal";

const started = performance.now();
const log = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);

function parse() {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      micro: { type: "boolean", default: false },
      seed: { type: "string", default: String(DEFAULT_SEED) },
      policies: { type: "string" },
      scenarios: { type: "string" },
      "route-settings": { type: "string" },
      out: { type: "string", default: "bench-results" },
    },
  });
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const chosen = values.policies ? values.policies.split(",").map((p) => policyNamed(p.trim())) : [...POLICIES];
  // Checked by the stack's PUT /v1/routes/{model}/settings, as ops' would be.
  const over = values["route-settings"] === undefined ? undefined : (JSON.parse(values["route-settings"]) as Partial<RouteSettings>);
  const policies = over ? chosen.map((p): Policy => ({ ...p, settings: (route) => ({ ...p.settings?.(route), ...over }) })) : chosen;
  const mode: Mode = values.quick ? "quick" : "full";
  const all = scenarioList(mode, seed);
  const wanted = values.scenarios?.split(",").map((s) => s.trim());
  const known = [...all.map((s) => s.name), BATCH_LINES_SCENARIO, LANES_SCENARIO, DIURNAL, ...ROUTE_SCENARIOS];
  for (const name of wanted ?? []) if (!known.includes(name)) throw new Error(`unknown scenario ${name}; known: ${known.join(", ")}`);
  return {
    mode,
    microOnly: values.micro,
    seed,
    policies,
    scenarios: wanted ? all.filter((s) => wanted.includes(s.name)) : all,
    diurnal: wanted ? wanted.includes(DIURNAL) : true,
    batchLines: (wanted ? wanted.includes(BATCH_LINES_SCENARIO) : true) && policies.some((p) => p.name === "d-adaptive"),
    // On (d)'s stack: it measures the lanes batchline ships.
    lanes: (wanted ? wanted.includes(LANES_SCENARIO) : true) && policies.some((p) => p.name === "d-adaptive"),
    // On d-adaptive stacks of their own, one route each (route-scenarios.ts).
    routes: policies.some((p) => p.name === "d-adaptive") ? ROUTE_SCENARIOS.filter((name) => (wanted ? wanted.includes(name) : true)) : [],
    outDir: resolve(values.out),
  };
}

function micro(route: Route, mode: Mode | "micro"): MicroResult {
  const component = route.components[0];
  if (!component) throw new Error(`route ${route.name} has no component`);
  const result = runMicro(component, defaultRouteSettings(route), { budgetMs: mode === "full" ? 6000 : 3000 });
  log(`micro-benchmark: ${result.sizes.map((s) => `${s.messages} msgs ${s.us_per_message.toFixed(2)} µs/msg`).join(", ")}`);
  return result;
}

function policyReport(stack: PolicyStack): PolicyReport {
  return {
    name: stack.policy.name,
    title: stack.policy.title,
    engine: stack.component.engine,
    event_source_mapping: {
      batch_size: stack.mapping.batchSize,
      batching_window_seconds: stack.mapping.maximumBatchingWindowSeconds,
      maximum_concurrency: stack.mapping.maximumConcurrency ?? null,
    },
    batcher_reserved_concurrency: stack.policy.batcherReservedConcurrency ?? null,
    settings: stack.settings,
    settings_source: stack.settingsSource,
  };
}

async function main(): Promise<void> {
  const args = parse();
  const projectDir = process.cwd();
  const catalog = loadRouteCatalog(join(projectDir, "infra", "routes.yml"));
  const route = catalog.routes.get(MODEL);
  const component = route?.components[0];
  if (!route || !component) throw new Error(`infra/routes.yml has no route ${MODEL}`);
  await mkdir(args.outDir, { recursive: true });

  const microResult = micro(route, args.microOnly ? "micro" : args.mode);
  const base = {
    schema_version: 1 as const,
    seed: args.seed,
    started_at: new Date(Date.now() - (performance.now() - started)).toISOString(),
    machine: { cpus: availableParallelism(), node: process.version, platform: `${process.platform}-${process.arch}`, load_average_at_start: loadavg() },
    route: {
      model: MODEL,
      component: component.name,
      profile: component.profile,
      gpu: component.endpointSpec.gpu,
      gpus: component.copies * component.accelerators_per_copy,
      price_per_gpu_hour: gpuHourPrice(component),
      max_sequences: component.limits.max_sequences,
      token_budget: component.limits.token_budget,
      admission_limit_512_512: admissionLimit(component.limits, 1024),
    },
  };
  if (args.microOnly) {
    const report: BenchReport = {
      ...base, mode: "micro", wall_s: (performance.now() - started) / 1000, engine_direct_rpm: null, engine_direct_closed_loop: null,
      micro: microResult, policies: [], scenarios: [], diurnal: null,
      targets: checkTargets({ engineDirectRpm: Number.NaN, scenarios: [], microUsPerMessage: microResult.us_per_message, adaptive: "d-adaptive", oneAtATime: "a-one-at-a-time", baselines: [] }),
    };
    await writeOutputs(args.outDir, report, new Map(), new Map(), log);
    return;
  }

  const prompts = promptBook();
  const runs: ScenarioRun[] = args.scenarios.map((scenario) => ({ scenario, trace: generateTrace(scenario.trace) }));
  for (const { trace } of runs) for (const r of trace) prompts.prompt(r.promptTokens, r.index);
  log(`${runs.reduce((n, r) => n + r.trace.length, 0)} requests in ${runs.length} traces; prompts ready`);

  const quick = args.mode === "quick";
  const runId = Date.now().toString(36);
  const staticRoutesFile = await writeStaticRoutesFile(projectDir, MODEL, args.outDir);
  const stacks = new Map<string, PolicyStack>();
  const stopAll = async () => Promise.all([...stacks.values()].map((s) => s.stop().catch((e: unknown) => log(`stopping ${s.policy.name}: ${String(e)}`))));
  process.once("SIGINT", () => {
    log("interrupted: stopping the stacks");
    void stopAll().then(() => process.exit(130));
  });
  const raw = new Map<string, Map<string, readonly Outcome[]>>();
  const invocations: Invocations = new Map();
  const scenarioReports: ScenarioReport[] = [];
  let ceiling: EngineCeiling | undefined;
  let lanes: LanesReport | null = null;
  let batchLines: BatchLinesReport | null = null;
  if (runs.length > 0 || args.lanes || args.batchLines) try {
    // The engine's ceiling first, with the machine to itself: starting stacks is CPU-bound
    // (osls, esbuild) and would starve the closed loop's clients.
    log("engine alone: its ceiling, a closed loop at its admission limit");
    // Quick too, the window after the warm-up holds two turnovers of the batch (about 12 s each).
    ceiling = await engineCeiling(catalog, component, { prompts, durationMs: quick ? 40_000 : 90_000, warmupMs: quick ? 15_000 : 20_000 });
    log(`engine alone: ${ceiling.rpm.toFixed(1)} req/min over ${ceiling.turnovers.toFixed(1)} turnovers (${ceiling.concurrency} in flight, GPU busy ${ceiling.gpuBusy.toFixed(2)}; GPU tokens give ${ceiling.tokenRpm.toFixed(1)})`);
    log(`starting ${args.policies.length} stacks`);
    await startPolicyStacks(args.policies, {
      projectDir, model: MODEL, staticRoutesFile, prompts, log: consoleLogger("ERROR"), runId, atOnce: STARTING_AT_ONCE, into: stacks, onLine: log,
    });
    for (const [k, run] of runs.entries()) {
      const { report, outcomes, invocations: spans } = await runScenario(run, {
        catalog, component, stacks, policies: args.policies.map((p) => p.name), mode: args.mode, prompts, last: k === runs.length - 1 && !args.lanes && !args.batchLines, log,
        gpuUsdPerJob: gpuUsdPerJob(gpuHourPrice(component), base.route.gpus, ceiling.rpm),
      });
      raw.set(run.scenario.name, outcomes);
      invocations.set(run.scenario.name, spans);
      scenarioReports.push(report);
    }
    const d = stacks.get("d-adaptive");
    if (args.batchLines && d) {
      batchLines = await runBatchLines(d, batchLinesPlan(args.mode), { prompts, gpuUsdPerJob: gpuUsdPerJob(gpuHourPrice(component), base.route.gpus, ceiling.rpm), log });
    }
    if (args.lanes && d) {
      const run = await runLanes(d, lanesPlan(args.mode, args.seed), { engineTokensPerS: ceiling.tokensPerS, prompts, log });
      lanes = run.report;
      invocations.set(LANES_SCENARIO, new Map([[d.policy.name, run.batcher]]));
      // The interactive trace's requests, idle and beside the batch, under requests.json's "lanes".
      raw.set(LANES_SCENARIO, new Map(run.outcomes));
    }
  } finally {
    log("stopping the stacks");
    await stopAll();
  }
  // After the 7B stacks are gone: each route's stack has the machine to itself.
  const routes: RouteScenariosReport | null = args.routes.length > 0 ? await runRouteScenarios(args.routes, { projectDir, outDir: args.outDir, runId, mode: args.mode, seed: args.seed, log, stackLog: consoleLogger("ERROR") }) : null;
  let diurnal: DiurnalReport | null = null;
  if (args.diurnal) {
    diurnal = await runDiurnal(diurnalPlan(args.mode, args.seed), { projectDir, outDir: args.outDir, model: MODEL, runId, prompts, log, stackLog: consoleLogger("ERROR") });
  }

  const report: BenchReport = {
    ...base,
    mode: args.mode,
    machine: { ...base.machine, load_average_at_end: loadavg() },
    wall_s: (performance.now() - started) / 1000,
    engine_direct_rpm: ceiling?.rpm ?? null,
    engine_direct_closed_loop: ceiling ? closedLoopReport(ceiling) : null,
    micro: microResult,
    policies: args.policies.flatMap((p) => { const s = stacks.get(p.name); return s ? [policyReport(s)] : []; }),
    scenarios: scenarioReports,
    diurnal,
    lanes,
    batch_lines: batchLines,
    routes,
    targets: [
      ...checkTargets({
        engineDirectRpm: ceiling?.rpm ?? Number.NaN,
        scenarios: scenarioReports,
        microUsPerMessage: microResult.us_per_message,
        adaptive: "d-adaptive",
        oneAtATime: "a-one-at-a-time",
        baselines: ["b-esm-defaults", "c-fixed-window"],
      }),
      ...engineCeilingCheck(ceiling?.rpm ?? Number.NaN, scenarioReports),
      ...serverlessTargets(scenarioReports, "d-adaptive", batchLines ?? undefined),
      ...(lanes ? lanesTargets(lanes.idle, lanes.under_batch, lanes.drain) : []),
      ...(routes ? routeTargets(routes) : []),
      ...(diurnal ? diurnalTargets(diurnal) : []),
    ],
  };
  await writeOutputs(args.outDir, report, raw, invocations, log);
  // Written first, for a look at the runs; then the run fails (issue 15 item 7).
  const gqa = routes?.gqa_saturated;
  const above = [...aboveEngineCeiling(report.engine_direct_rpm ?? Number.NaN, scenarioReports), ...(gqa ? aboveEngineCeiling(gqa.engine_direct_rpm, [gqa.scenario]) : [])];
  if (above.length > 0) {
    const which = above.map((a) => `${a.policy} served ${a.rpm.toFixed(1)} req/min in ${a.scenario}, ${a.ratio.toFixed(3)}x`).join("; ");
    throw new Error(`above the engine alone's ceiling by more than ${100 * ENGINE_CEILING_TOLERANCE}%: ${which}. The pipeline only feeds the engine: the measurement is wrong.`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);

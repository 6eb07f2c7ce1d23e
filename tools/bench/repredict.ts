/**
 * The tuning simulator's predictions of a bench JSON's runs again, with the simulator as it is
 * now: `npm run bench:repredict [-- file]` (default bench-results/latest.json). Each run's trace
 * is the scenario's seeded one, so a measured run need not be repeated to check a change of the
 * simulator against it; every prediction it rewrites says so (`repredicted_at`).
 */
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadRouteCatalog } from "#shared/config";
import type { RouteSettings } from "#shared/core/route-settings";
import { lanesPlan } from "./lanes.ts";
import type { PolicyStack } from "./policy-stack.ts";
import { predictLanes, predictRun, type PredictionCheck } from "./prediction.ts";
import { type Mode, scenarios } from "./scenarios.ts";
import { generateTrace } from "./trace.ts";

type Measured = { name: string; throughput_rpm: number; p95_ms: number; prediction?: PredictionCheck & { repredicted_at?: string } };
type BenchJson = {
  mode: Mode;
  seed: number;
  route: { model: string };
  policies: { name: string; engine: string; event_source_mapping: { batch_size: number; batching_window_seconds: number; maximum_concurrency: number | null }; settings: RouteSettings }[];
  scenarios: { name: string; engine_direct: { p95_ms: number } | null; policies: Measured[] }[];
  lanes?: { idle: { p95_ms: number }; under_batch: { p95_ms: number }; drain: { drain_rpm: number }; batch: { landed_at_s: number }; prediction?: object } | null;
};

const file = resolve(process.argv[2] ?? join("bench-results", "latest.json"));
const bench = JSON.parse(await readFile(file, "utf8")) as BenchJson;
const route = loadRouteCatalog(join(process.cwd(), "infra", "routes.yml")).routes.get(bench.route.model);
const rolling = route?.components[0];
if (!route || !rolling) throw new Error(`infra/routes.yml has no route ${bench.route.model} with a component`);
const at = new Date().toISOString();
const pct = (v: number) => `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)}%`;

/** The policy's stack as its run had it: its settings and mapping from the JSON, its engine on the route's component. */
function stackOf(name: string): PolicyStack | undefined {
  const policy = bench.policies.find((p) => p.name === name);
  if (!policy || !route || !rolling) return undefined;
  const component = policy.engine === "lmi-dynamic" ? { ...rolling, engine: "lmi-dynamic" as const } : rolling;
  const mapping = policy.event_source_mapping;
  const stack = { route, component, settings: policy.settings, mapping: { batchSize: mapping.batch_size, maximumBatchingWindowSeconds: mapping.batching_window_seconds, maximumConcurrency: mapping.maximum_concurrency ?? undefined } };
  return stack as unknown as PolicyStack;
}

for (const scenario of scenarios(bench.mode, bench.seed)) {
  const measured = bench.scenarios.find((s) => s.name === scenario.name);
  for (const run of measured?.policies ?? []) {
    const stack = run.prediction && stackOf(run.name);
    if (!stack || !measured) continue;
    run.prediction = { ...predictRun(stack, scenario, generateTrace(scenario.trace), run, measured.engine_direct ?? undefined), repredicted_at: at };
    console.log(`${scenario.name} ${run.name}: ${run.prediction.throughput_rpm.toFixed(1)} req/min (${pct(run.prediction.error_throughput)}), p95 ${(run.prediction.p95_ms / 1000).toFixed(2)} s (${pct(run.prediction.error_p95)})`);
  }
}
const lanes = bench.lanes;
const lanesStack = stackOf("d-adaptive");
if (lanes?.prediction && lanesStack) {
  const plan = lanesPlan(bench.mode, bench.seed);
  const p = predictLanes(lanesStack, plan, generateTrace(plan.interactive), { idleP95Ms: lanes.idle.p95_ms, besideP95Ms: lanes.under_batch.p95_ms, drainRpm: lanes.drain.drain_rpm, landedMs: lanes.batch.landed_at_s * 1000 });
  lanes.prediction = { ...p, repredicted_at: at };
  console.log(`lanes: drain ${p.throughput_rpm.toFixed(1)} jobs/min (${pct(p.error_throughput)}), beside the batch p95 ${(p.p95_ms / 1000).toFixed(2)} s (${pct(p.error_p95)}), idle ${(p.idle_p95_ms / 1000).toFixed(2)} s (${pct(p.error_idle_p95)})`);
}
await writeFile(file, `${JSON.stringify(bench, null, 2)}\n`);
console.log(`rewrote the predictions in ${file}`);

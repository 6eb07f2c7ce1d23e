import { readFile, writeFile } from "node:fs/promises";
import { plot } from "simple-ascii-chart";
import { loadRouteCatalog } from "#shared/config";
import { ValidationError } from "#shared/core/errors";
import type { RouteSettings } from "#shared/core/route-settings";
import type { Route } from "#shared/core/routes";
import { parseRecordedTrace, recordedSpanMs, simJobsOfRecorded, type RecordedTrace } from "#shared/sim/recorded-trace";
import { generateTrace } from "#shared/sim/trace";
import { tune, type CandidateResult, type Objective, type TuneResult } from "#shared/sim/tune";
import type { SimJob } from "#shared/sim/world";
import type { Api } from "./client.ts";
import { CliError, EXIT, type ExitCode } from "./exit-codes.ts";

/**
 * `batchline tune` and `batchline trace export`: the tuning simulator (shared/sim) on a trace of
 * the route's recent jobs, a trace file, or a synthetic Poisson trace; the route's definition from
 * the routes file, its live settings from the stack.
 */

export type TraceSource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "recent"; readonly minutes: number }
  | { readonly kind: "synthetic"; readonly rpm: number; readonly durationS: number; readonly promptTokens: number; readonly maxTokens: number; readonly seed: number };

export type TuneOptions = {
  readonly model: string;
  readonly routesFile: string;
  readonly trace: TraceSource;
  readonly objective: Objective;
  readonly maxCopies: number | undefined;
  readonly apply: boolean;
  readonly json: boolean;
};

const traceQuery = (model: string, minutes: number) => `/v1/routes/${encodeURIComponent(model)}/trace?minutes=${minutes}`;

/** `batchline trace export`: the route's jobs of the last `minutes`, as the trace file `tune --trace` reads. */
export async function exportTrace(api: Api, model: string, minutes: number, out: string | undefined): Promise<ExitCode> {
  const trace = await api.json<RecordedTrace>("GET", traceQuery(model, minutes));
  const text = `${JSON.stringify(trace)}\n`;
  if (out === undefined) process.stdout.write(text);
  else {
    await writeFile(out, text);
    process.stderr.write(`${trace.jobs.length} jobs of ${model} from ${trace.from} to ${trace.to} written to ${out}\n`);
  }
  return EXIT.ok;
}

async function loadTrace(api: Api, model: string, source: TraceSource): Promise<{ jobs: SimJob[]; durationMs: number; label: string }> {
  if (source.kind === "synthetic") {
    const durationMs = source.durationS * 1000;
    const lengths = { kind: "fixed" as const, promptTokens: source.promptTokens, maxTokens: source.maxTokens };
    const trace = generateTrace({ seed: source.seed, durationMs, arrivals: { kind: "poisson", rpm: source.rpm }, lengths });
    const jobs = trace.map((r): SimJob => ({ id: `s${r.index}`, atMs: r.atMs, promptTokens: r.promptTokens, maxTokens: r.maxTokens, lane: "interactive" }));
    return { jobs, durationMs, label: `synthetic Poisson ${source.rpm}/min for ${source.durationS} s, ${source.promptTokens}+${source.maxTokens}` };
  }
  const recorded = source.kind === "file" ? parseTraceFile(source.path, await readText(source.path)) : await api.json<RecordedTrace>("GET", traceQuery(model, source.minutes));
  if (recorded.jobs.length === 0) {
    throw new CliError(`the trace of ${model} ${source.kind === "file" ? `in ${source.path} ` : `of the last ${source.minutes} minutes `}has no jobs; give a synthetic one with --rpm`, EXIT.usage);
  }
  return { jobs: simJobsOfRecorded(recorded), durationMs: recordedSpanMs(recorded), label: `${recorded.jobs.length} jobs of ${recorded.model} from ${recorded.from} to ${recorded.to}` };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
  }
}

function parseTraceFile(path: string, text: string): RecordedTrace {
  try {
    return parseRecordedTrace(JSON.parse(text));
  } catch (error) {
    const why = error instanceof ValidationError || error instanceof SyntaxError ? error.message : String(error);
    throw new CliError(`${path} is not a trace (batchline trace export writes one): ${why}`, EXIT.usage);
  }
}

function routeOf(routesFile: string, model: string): Route {
  let route: Route | undefined;
  try {
    route = loadRouteCatalog(routesFile).routes.get(model);
  } catch (error) {
    throw new CliError(`${routesFile}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
  }
  if (!route) throw new CliError(`${routesFile} has no route ${model}`, EXIT.usage);
  return route;
}

/** `batchline tune`: exit 0 with a recommendation (applied with --apply), EXIT.unmet when no candidate meets the objective. */
export async function tuneRoute(api: Api, options: TuneOptions): Promise<ExitCode> {
  const route = routeOf(options.routesFile, options.model);
  const { settings } = await api.json<{ settings: RouteSettings }>("GET", `/v1/routes/${encodeURIComponent(options.model)}/settings`);
  const trace = await loadTrace(api, options.model, options.trace);
  const maxCopies = options.maxCopies ?? Math.max(...route.components.map((c) => c.autoscaling?.max_copies ?? c.copies));
  const result = tune(route, settings, trace.jobs, options.objective, { maxCopies, durationMs: trace.durationMs });
  const applied = options.apply && result.best ? await applyBest(api, options.model, result.best) : undefined;
  if (options.json) process.stdout.write(`${JSON.stringify({ model: options.model, trace: trace.label, ...result, applied: applied ?? null })}\n`);
  else process.stdout.write(`${report(options.model, trace.label, result, applied !== undefined)}\n`);
  if (options.apply && !result.best) process.stderr.write("batchline: nothing applied: no candidate meets the objective\n");
  if (result.best && result.best.copies !== result.current.copies) {
    process.stderr.write(`batchline: the recommendation runs ${result.best.copies} copies (now ${result.current.copies}): copies are not a live setting; change them in the routes file or the component's autoscaling\n`);
  }
  return result.best ? EXIT.ok : EXIT.unmet;
}

async function applyBest(api: Api, model: string, best: CandidateResult): Promise<RouteSettings> {
  const patch = { max_in_flight_per_copy: best.max_in_flight_per_copy, max_wait_ms: best.max_wait_ms };
  const { settings } = await api.json<{ settings: RouteSettings }>("PUT", `/v1/routes/${encodeURIComponent(model)}/settings`, patch);
  return settings;
}

const seconds = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : "-");
const cells = (values: readonly string[], widths: readonly number[]) => values.map((v, i) => (i === 0 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join("  ");
const WIDTHS = [9, 6, 9, 8, 8, 8, 8, 9, 9, 6];

/** The human-readable answer: the candidates as a table, the trade-off as a chart, the recommendation. */
export function report(model: string, traceLabel: string, result: TuneResult, applied: boolean): string {
  const which = result.objective.percentile;
  const latencyOf = (r: CandidateResult) => (which === "p95" ? r.prediction.p95_ms : r.prediction.p99_ms);
  const sorted = result.candidates.toSorted((a, b) => a.dollars_per_hour - b.dollars_per_hour || latencyOf(a) - latencyOf(b));
  const mark = (r: CandidateResult) => (r === result.best ? "*" : r.meets_objective ? "" : "x");
  const lines = [
    `batchline tune ${model}: ${traceLabel}; objective ${which} ≤ ${seconds(result.objective.targetMs)} s`,
    cells(["copies", "seqs", "hold ms", "req/min", "p50 s", "p95 s", "p99 s", "GPU busy", "$/1M tok", ""], WIDTHS),
    ...sorted.map((r) =>
      cells(
        [
          String(r.copies), String(r.max_in_flight_per_copy), String(r.max_wait_ms), r.prediction.throughput_rpm.toFixed(1),
          seconds(r.prediction.p50_ms), seconds(r.prediction.p95_ms), seconds(r.prediction.p99_ms), r.prediction.gpu_busy.toFixed(2),
          Number.isFinite(r.prediction.cost_per_million_tokens) ? r.prediction.cost_per_million_tokens.toFixed(2) : "-", mark(r),
        ],
        WIDTHS,
      ),
    ),
    "*: recommended (most requests per dollar meeting the objective); x: misses it. seqs: max_in_flight_per_copy; hold: max_wait_ms.",
    "",
    chart(result, latencyOf),
    "",
  ];
  const best = result.best;
  if (!best) lines.push(`no candidate meets ${which} ≤ ${seconds(result.objective.targetMs)} s: more copies (--max-copies) or a looser objective`);
  else {
    lines.push(
      `recommended: ${best.copies} ${best.copies === 1 ? "copy" : "copies"}, max_in_flight_per_copy ${best.max_in_flight_per_copy}, max_wait_ms ${best.max_wait_ms}: ` +
        `${which} ${seconds(latencyOf(best))} s, ${best.prediction.throughput_rpm.toFixed(1)} req/min, ${best.requests_per_dollar.toFixed(0)} requests per dollar ` +
        `(now ${seconds(latencyOf(result.current))} s, ${result.current.requests_per_dollar.toFixed(0)} per dollar)`,
    );
    lines.push(applied ? "applied through PUT /v1/routes/{model}/settings" : "not applied (--apply writes it through the settings API)");
  }
  return lines.join("\n");
}

/**
 * The objective's latency against the cost per request, each candidate drawn as its copy count,
 * the target as a line. Latencies past twice the target are drawn at its top: they miss anyway.
 */
function chart(result: TuneResult, latencyOf: (r: CandidateResult) => number): string {
  const drawn = result.candidates.filter((r) => Number.isFinite(latencyOf(r)) && r.requests_per_dollar > 0);
  if (drawn.length === 0) return "(no candidate answered its jobs: nothing to chart)";
  const ceiling = (2 * result.objective.targetMs) / 1000;
  const series = [...Map.groupBy(drawn, (r) => r.copies).entries()].toSorted(([a], [b]) => a - b);
  // The formatter is handed each point's values, not its series: a point's symbol is known by them.
  const keyOf = (x: number, y: number) => `${x},${y}`;
  const symbolOf = new Map<string, string>();
  const points = series.map(([copies, list]) => {
    const line = list.map((r): [number, number] => [1000 / r.requests_per_dollar, Math.min(ceiling, latencyOf(r) / 1000)]).toSorted((a, b) => a[0] - b[0]);
    for (const [x, y] of line) symbolOf.set(keyOf(x, y), copies > 9 ? "+" : String(copies));
    return line;
  });
  const chartText = plot(points, {
    title: `${result.objective.percentile} latency, s, against dollars per 1,000 requests (each point: its copy count)`,
    width: 60,
    height: 12,
    mode: "point",
    yRange: [0, ceiling],
    thresholds: [{ y: result.objective.targetMs / 1000 }],
    lineFormatter: ({ x, y, plotX, plotY }) => ({ x: plotX, y: plotY, symbol: symbolOf.get(keyOf(x, y)) ?? "*" }),
    formatter: (value) => (Math.abs(value) >= 10 ? value.toFixed(0) : value.toFixed(2)),
  });
  return chartText;
}

import type { Phases } from "./metrics.ts";
import type { PredictionCheck } from "./prediction.ts";
import type { EngineClosedLoopReport, ScenarioReport } from "./report.ts";
import type { RunResult, RunServerlessCost } from "./run.ts";
import { biggestContributors } from "./aws-cost.ts";

/** The text report's pieces that several sections share (report.ts, route-summary.ts). */

export const num = (v: number | null, digits: number, scale = 1): string =>
  v === null || !Number.isFinite(v) ? "-" : (v / scale).toFixed(digits);

export function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
}

const HEADER = ["policy", "req/min", "tok/s", "p50 s", "p95 s", "p99 s", "queue s", "fill", "GPU busy", "$/1M tok", "done/sent", "load"];
const WIDTHS = [22, 8, 7, 7, 7, 7, 8, 5, 8, 9, 10, 5];

function resultRow(label: string, r: RunResult): string {
  const lowerBound = r.latency_censored > 0 ? "≥" : "";
  return row(
    [
      label,
      num(r.throughput_rpm, 1),
      num(r.tokens_per_s, 0),
      lowerBound + num(r.p50_ms, 2, 1000),
      lowerBound + num(r.p95_ms, 2, 1000),
      lowerBound + num(r.p99_ms, 2, 1000),
      num(r.queue_wait_p50_ms, 2, 1000),
      num(r.batch_fill, 2),
      num(r.gpu_busy, 2),
      num(r.cost_per_million_tokens, 2),
      `${r.succeeded}/${r.requests}`,
      num(r.machine_load, 1),
    ],
    WIDTHS,
  );
}

/** The engine alone's ceiling, as measured. */
export function closedLoopLine(rpm: number, c: EngineClosedLoopReport): string {
  return `engine alone, closed loop of ${c.concurrency}: ${rpm.toFixed(1)} req/min, ${c.tokens_per_s.toFixed(0)} tok/s, GPU busy ${c.gpu_busy.toFixed(2)}, mean batch ${c.mean_batch.toFixed(1)} (${c.completed} answers in ${c.measured_from_s.toFixed(1)}-${c.measured_to_s.toFixed(1)} s, ${c.measured_turnovers?.toFixed(1) ?? "-"} turnovers; GPU tokens give ${c.token_rpm?.toFixed(1) ?? "-"} req/min)`;
}

/**
 * A scenario's table, the engine alone first, and its notes; `allPhases`: where the pipeline's time
 * went for a saturated run too (a route that falls short says where).
 */
export function scenarioLines(s: ScenarioReport, options: { readonly allPhases?: boolean } = {}): string[] {
  const lines: string[] = [];
  lines.push(`${s.name}: ${s.title} — offered ${s.offered_rpm.toFixed(0)} req/min, ${s.requests} requests over ${s.duration_s.toFixed(0)} s${s.targeted ? "" : " (reported, not targeted)"}`);
  lines.push(row(HEADER, WIDTHS));
  lines.push(resultRow("engine alone", s.engine_direct));
  for (const p of s.policies) lines.push(resultRow(p.name, p) + (p.ran_with.length > 0 ? `  (ran together with ${p.ran_with.join(", ")})` : ""));
  if (s.kind === "latency" || options.allPhases) lines.push(...s.policies.flatMap((p) => (p.phases ? [phasesLine(p.name, p.phases)] : [])));
  if (s.kind === "saturated") {
    const short = [s.engine_direct, ...s.policies].filter((r) => (r.measured_turnovers ?? 1) < 1);
    lines.push(...short.map((r) => `  ${r.name}: its steady part held ${r.measured_turnovers?.toFixed(2)} turnovers of the batch, less than a whole one: its req/min is not to be trusted`));
  }
  lines.push(...s.policies.flatMap((p) => (p.eta_error ? [etaLine(p.name, p.eta_error)] : [])));
  lines.push(...s.policies.flatMap((p) => (p.prediction ? [predictionLine(p.name, p.prediction)] : [])));
  lines.push(...s.policies.flatMap((p) => (p.serverless ? [serverlessLine(p.name, p.serverless)] : [])));
  return lines;
}

export function serverlessLine(name: string, c: RunServerlessCost): string {
  const units = `DynamoDB units ${c.dynamodb_units_per_job.read.toFixed(1)} read, ${c.dynamodb_units_per_job.write.toFixed(1)} write`;
  const lambda = `Lambda ${c.lambda_invocations_per_job.toFixed(2)} invocations, ${c.lambda_gb_seconds_per_job.toFixed(3)} GB-s`;
  const usd = `$${c.usd_per_job.total.toExponential(2)}/job (Lambda's GB-s $${c.lambda_duration_usd_per_job.toExponential(2)} of it) = ${(100 * c.share_of_gpu).toFixed(2)}% of the GPU's $${c.gpu_usd_per_job.toExponential(2)}`;
  return `  ${name}, AWS per ${c.kind} job over ${c.jobs}${c.complete ? "" : " (stopped with jobs unanswered: a lower bound)"}: ${c.requests_per_job.toFixed(2)} requests (${biggestContributors(c).join(", ")}); ${units}; ${lambda}; ${usd}`;
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);
const phaseList = (p: Phases) => `submit ${seconds(p.submit_ms)}, queue ${seconds(p.queue_ms)}, GPU ${seconds(p.gpu_ms)}, notify ${seconds(p.notify_ms)}`;

export function phasesLine(name: string, phases: NonNullable<RunResult["phases"]>): string {
  return `  ${name}, s: slowest ${phases.slowest_count} (1%) ${phaseList(phases.slowest_1pct)}; median ${phaseList(phases.median)}`;
}

const signedPercent = (share: number) => (Number.isFinite(share) ? `${share >= 0 ? "+" : ""}${(100 * share).toFixed(1)}%` : "-");

function predictionLine(name: string, p: PredictionCheck): string {
  const engine = p.engine_alone
    ? `; the engine alone simulated: p95 ${seconds(p.engine_alone.p95_ms)} s (${signedPercent(p.engine_alone.error_p95)} of measured: the machine's own drift); p95 over the engine's ${signedPercent(p.engine_alone.error_p95_over_engine)}`
    : "";
  return `  ${name}, tuning simulator (${p.simulated_in_ms.toFixed(0)} ms): ${p.throughput_rpm.toFixed(1)} req/min (${signedPercent(p.error_throughput)} of measured), p95 ${seconds(p.p95_ms)} s (${signedPercent(p.error_p95)})${engine}`;
}

function etaLine(name: string, eta: NonNullable<RunResult["eta_error"]>): string {
  const waited = eta.waited ? `; the ${eta.waited.jobs} that waited ≥ 1 s: median ${seconds(eta.waited.median_ms)}, p90 ${seconds(eta.waited.p90_ms)}` : "";
  return `  ${name}, start estimated at submit, |error| s: median ${seconds(eta.median_ms)}, p90 ${seconds(eta.p90_ms)} over ${eta.jobs} jobs (bias ${eta.bias_ms >= 0 ? "+" : ""}${seconds(eta.bias_ms)})${waited}`;
}

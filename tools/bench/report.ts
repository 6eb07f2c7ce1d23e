import type { DiurnalReport } from "./diurnal.ts";
import { type LanesReport, lanesLines } from "./lanes-summary.ts";
import type { Phases } from "./metrics.ts";
import type { MicroResult } from "./micro.ts";
import type { PredictionCheck } from "./prediction.ts";
import type { RunResult, RunServerlessCost } from "./run.ts";
import { biggestContributors } from "./aws-cost.ts";
import type { BatchLinesReport } from "./batch-lines.ts";
import type { TargetCheck } from "./targets.ts";

/** bench-results/latest.json: its schema is in the README ("Benchmark"). */
export type ScenarioReport = {
  readonly name: string;
  readonly title: string;
  readonly kind: "saturated" | "latency";
  readonly targeted: boolean;
  readonly seed: number;
  readonly offered_rpm: number;
  readonly duration_s: number;
  readonly requests: number;
  readonly engine_direct_p50_ms: number;
  readonly engine_direct: RunResult;
  readonly policies: readonly RunResult[];
};

export type PolicyReport = {
  readonly name: string;
  readonly title: string;
  readonly engine: string;
  readonly event_source_mapping: { readonly batch_size: number; readonly batching_window_seconds: number; readonly maximum_concurrency: number | null };
  readonly batcher_reserved_concurrency: number | null;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly settings_source: string;
};

export type BenchReport = {
  readonly schema_version: 1;
  readonly mode: "quick" | "full" | "micro";
  readonly seed: number;
  readonly started_at: string;
  readonly wall_s: number;
  readonly machine: {
    readonly cpus: number;
    readonly node: string;
    readonly platform: string;
    /** 1, 5 and 15 minute load averages: the machine is shared, and this says how busy it was. */
    readonly load_average_at_start: readonly number[];
    readonly load_average_at_end?: readonly number[];
  };
  readonly route: {
    readonly model: string;
    readonly component: string;
    readonly profile: string;
    readonly gpu: string;
    readonly gpus: number;
    readonly price_per_gpu_hour: number;
    readonly max_sequences: number;
    readonly token_budget: number;
    readonly admission_limit_512_512: number;
  } | null;
  readonly engine_direct_rpm: number | null;
  readonly engine_direct_closed_loop: {
    readonly concurrency: number;
    readonly completed: number;
    readonly completed_rpm: number;
    readonly measured_from_s: number;
    readonly measured_to_s: number;
    /** The window's length in turnovers of the running batch (the rate counts whole ones). */
    readonly measured_turnovers?: number;
    /** What the GPU's tokens per second over the window give, for comparison (512 new tokens a request). */
    readonly token_rpm?: number;
    readonly tokens_per_s: number;
    readonly gpu_busy: number;
    readonly mean_batch: number;
  } | null;
  readonly micro: MicroResult | null;
  readonly policies: readonly PolicyReport[];
  readonly scenarios: readonly ScenarioReport[];
  /** One batch file on (d)'s idle stack: what a line asks of AWS (issue 18 item 2); null when not run. */
  readonly batch_lines?: BatchLinesReport | null;
  /** The compressed day, autoscaled fleet against a fixed one (issue 10); null when not run. */
  readonly diurnal: DiurnalReport | null;
  /** A batch file draining beside interactive jobs (issue 12 item 3); null or absent when not run. */
  readonly lanes?: LanesReport | null;
  readonly targets: readonly TargetCheck[];
};

const num = (v: number | null, digits: number, scale = 1): string =>
  v === null || !Number.isFinite(v) ? "-" : (v / scale).toFixed(digits);

function row(cells: readonly string[], widths: readonly number[]): string {
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

/** The human-readable report: one table per scenario, then the targets. */
export function formatReport(report: BenchReport): string {
  const lines: string[] = [];
  const wall = `${report.wall_s.toFixed(0)} s`;
  const load = (l: readonly number[] | undefined) => (l ? l.map((v) => v.toFixed(1)).join(" ") : "-");
  lines.push(
    `batchline bench (${report.mode}, seed ${report.seed}, ${report.machine.cpus} CPUs, ${wall}; load average ${load(report.machine.load_average_at_start)} at start, ${load(report.machine.load_average_at_end)} at end)`,
  );
  if (report.route) {
    const r = report.route;
    lines.push(`route ${r.model}: ${r.component} (${r.profile}) on ${r.gpus} ${r.gpu}, $${r.price_per_gpu_hour.toFixed(2)}/GPU-hour; one copy admits ${r.admission_limit_512_512} sequences of 512+512`);
  }
  if (report.engine_direct_rpm !== null && report.engine_direct_closed_loop) {
    const c = report.engine_direct_closed_loop;
    lines.push(
      `engine alone, closed loop of ${c.concurrency}: ${report.engine_direct_rpm.toFixed(1)} req/min, ${c.tokens_per_s.toFixed(0)} tok/s, GPU busy ${c.gpu_busy.toFixed(2)}, mean batch ${c.mean_batch.toFixed(1)} (${c.completed} answers in ${c.measured_from_s.toFixed(1)}-${c.measured_to_s.toFixed(1)} s, ${c.measured_turnovers?.toFixed(1) ?? "-"} turnovers; GPU tokens give ${c.token_rpm?.toFixed(1) ?? "-"} req/min)`,
    );
  }
  for (const s of report.scenarios) {
    lines.push("");
    lines.push(`${s.name}: ${s.title} — offered ${s.offered_rpm.toFixed(0)} req/min, ${s.requests} requests over ${s.duration_s.toFixed(0)} s${s.targeted ? "" : " (reported, not targeted)"}`);
    lines.push(row(HEADER, WIDTHS));
    lines.push(resultRow("engine alone", s.engine_direct));
    for (const p of s.policies) lines.push(resultRow(p.name, p) + (p.ran_with.length > 0 ? `  (ran together with ${p.ran_with.join(", ")})` : ""));
    if (s.kind === "latency") lines.push(...s.policies.flatMap((p) => (p.phases ? [phasesLine(p.name, p.phases)] : [])));
    if (s.kind === "saturated") {
      const short = [s.engine_direct, ...s.policies].filter((r) => (r.measured_turnovers ?? 1) < 1);
      lines.push(...short.map((r) => `  ${r.name}: its steady part held ${r.measured_turnovers?.toFixed(2)} turnovers of the batch, less than a whole one: its req/min is not to be trusted`));
    }
    lines.push(...s.policies.flatMap((p) => (p.eta_error ? [etaLine(p.name, p.eta_error)] : [])));
    lines.push(...s.policies.flatMap((p) => (p.prediction ? [predictionLine(p.name, p.prediction)] : [])));
    lines.push(...s.policies.flatMap((p) => (p.serverless ? [serverlessLine(p.name, p.serverless)] : [])));
  }
  if (report.batch_lines) {
    const b = report.batch_lines;
    lines.push("", `batch-lines: one file of ${b.jobs} lines on d-adaptive's idle stack, ${b.complete ? "completed" : "NOT completed"} in ${b.drained_in_s.toFixed(1)} s (load ${b.machine_load.toFixed(1)})`, serverlessLine("d-adaptive", b));
  }
  if (report.lanes) lines.push("", ...lanesLines(report.lanes));
  if (report.diurnal) lines.push("", ...diurnalLines(report.diurnal));
  if (report.micro) {
    lines.push("");
    const sizes = report.micro.sizes.map((m) => `${m.messages} msgs: ${m.us_per_message.toFixed(2)} µs/msg (packGpuBatches alone ${m.pack_us_per_message.toFixed(2)})`).join("; ");
    lines.push(`micro-benchmark, packing + placement + hold decision: ${sizes}`);
  }
  if (report.targets.length > 0) {
    lines.push("");
    lines.push("targets (issues 4, 10, 12, 15 and 18):");
    for (const t of report.targets) lines.push(`  ${t.met ? "MET   " : "MISSED"} ${t.name}: ${t.measured}  [target ${t.target}]`);
  }
  lines.push("");
  lines.push("≥: some requests were still unanswered when the run ended; the percentile is a lower bound.");
  lines.push("fill: mean running batch over what one copy admits for the trace; load: the machine's 1-minute load average at the end of the run.");
  lines.push("slowest/median: where a request's time went, from its time in the trace: until the job was stored, waiting for the GPU, on it (result written), until its final event arrived.");
  return lines.join("\n");
}

function serverlessLine(name: string, c: RunServerlessCost): string {
  const units = `DynamoDB units ${c.dynamodb_units_per_job.read.toFixed(1)} read, ${c.dynamodb_units_per_job.write.toFixed(1)} write`;
  const lambda = `Lambda ${c.lambda_invocations_per_job.toFixed(2)} invocations, ${c.lambda_gb_seconds_per_job.toFixed(3)} GB-s`;
  const usd = `$${c.usd_per_job.total.toExponential(2)}/job (Lambda's GB-s $${c.lambda_duration_usd_per_job.toExponential(2)} of it) = ${(100 * c.share_of_gpu).toFixed(2)}% of the GPU's $${c.gpu_usd_per_job.toExponential(2)}`;
  return `  ${name}, AWS per ${c.kind} job over ${c.jobs}${c.complete ? "" : " (stopped with jobs unanswered: a lower bound)"}: ${c.requests_per_job.toFixed(2)} requests (${biggestContributors(c).join(", ")}); ${units}; ${lambda}; ${usd}`;
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);
const phaseList = (p: Phases) => `submit ${seconds(p.submit_ms)}, queue ${seconds(p.queue_ms)}, GPU ${seconds(p.gpu_ms)}, notify ${seconds(p.notify_ms)}`;

function phasesLine(name: string, phases: NonNullable<RunResult["phases"]>): string {
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

const DIURNAL_HEADER = ["fleet", "copies", "GPU-h", "$", "$/1M tok", "p50 s", "p95 s", "p99 s", "errors", "warming", "wait p50 s", "at zero", "load"];
const DIURNAL_WIDTHS = [11, 9, 7, 8, 9, 7, 7, 7, 7, 8, 10, 8, 5];

function diurnalLines(d: DiurnalReport): string[] {
  const delays = Object.entries(d.delays).map(([name, v]) => `${name} ${v.real_s} s -> ${v.compressed_s.toFixed(2)} s`).join(", ");
  return [
    `diurnal: ${d.title} — ${d.requests} requests over ${d.day_s.toFixed(0)} s, ${d.offered_rpm_mean.toFixed(0)} req/min on average`,
    `  delays compressed x${d.compression}: ${delays}`,
    row(DIURNAL_HEADER, DIURNAL_WIDTHS),
    ...d.fleets.map((f) =>
      row(
        [
          f.name,
          `${num(f.mean_copies, 2)}/${f.max_copies}`,
          num(f.gpu_hours, 3),
          num(f.cost_usd, 2),
          num(f.cost_per_million_tokens, 2),
          num(f.p50_ms, 2, 1000),
          num(f.p95_ms, 2, 1000),
          num(f.p99_ms, 2, 1000),
          String(f.errors),
          String(f.warming.jobs),
          num(f.warming.queue_wait_p50_ms, 2, 1000),
          `${f.warming.answered_at_zero}/${f.warming.arrived_at_zero}`,
          num(f.machine_load, 1),
        ],
        DIURNAL_WIDTHS,
      ),
    ),
    `  copies: mean/most held over the day; warming: jobs told they wait for a copy starting; at zero: answered/arrived while no copy served`,
  ];
}

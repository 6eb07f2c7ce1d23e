import type { DiurnalReport } from "./diurnal.ts";
import { type LanesReport, lanesLines } from "./lanes-summary.ts";
import type { MicroResult } from "./micro.ts";
import type { RunResult } from "./run.ts";
import type { BatchLinesReport } from "./batch-lines.ts";
import { closedLoopLine, num, row, scenarioLines, serverlessLine } from "./report-lines.ts";
import { type RouteScenariosReport, routeLines } from "./route-summary.ts";
import type { TargetCheck } from "./targets.ts";

/** The engine alone's closed loop at its admission limit: the ceiling a route's saturated runs are held against. */
export type EngineClosedLoopReport = {
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
};

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
  readonly engine_direct_closed_loop: EngineClosedLoopReport | null;
  readonly micro: MicroResult | null;
  readonly policies: readonly PolicyReport[];
  readonly scenarios: readonly ScenarioReport[];
  /** One batch file on (d)'s idle stack: what a line asks of AWS (issue 18 item 2); null when not run. */
  readonly batch_lines?: BatchLinesReport | null;
  /** The compressed day, autoscaled fleet against a fixed one (issue 10); null when not run. */
  readonly diurnal: DiurnalReport | null;
  /** A batch file draining beside interactive jobs (issue 12 item 3); null or absent when not run. */
  readonly lanes?: LanesReport | null;
  /** The 8B and 1B routes' scenarios, each on a stack of its own (issue 15 item 8, issue 18 item 3); null or absent when not run. */
  readonly routes?: RouteScenariosReport | null;
  readonly targets: readonly TargetCheck[];
};

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
  if (report.engine_direct_rpm !== null && report.engine_direct_closed_loop) lines.push(closedLoopLine(report.engine_direct_rpm, report.engine_direct_closed_loop));
  for (const s of report.scenarios) lines.push("", ...scenarioLines(s));
  if (report.batch_lines) {
    const b = report.batch_lines;
    lines.push("", `batch-lines: one file of ${b.jobs} lines on d-adaptive's idle stack, ${b.complete ? "completed" : "NOT completed"} in ${b.drained_in_s.toFixed(1)} s (load ${b.machine_load.toFixed(1)})`, serverlessLine("d-adaptive", b));
  }
  if (report.lanes) lines.push("", ...lanesLines(report.lanes));
  if (report.routes) lines.push(...routeLines(report.routes));
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

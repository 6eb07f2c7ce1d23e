import type { BatchLinesReport } from "./batch-lines.ts";
import type { ProfileSummary } from "./cpu-profile.ts";
import type { EngineDrain } from "./phases.ts";
import type { EngineClosedLoopReport, ScenarioReport } from "./report.ts";
import { closedLoopLine, scenarioLines, serverlessLine } from "./report-lines.ts";
import { engineCeilingCheck, type TargetCheck } from "./targets.ts";

/**
 * The scenarios of the routes beside the 7B one, each on a d-adaptive stack of its own and beside
 * the engine alone on the same route: the 8B route saturated (issue 15 item 8), and the 1B route's
 * batch file and single jobs at full speed (issue 18 item 3). Pure: route-scenarios.ts runs them.
 */
export const GQA_SATURATED_RATIO = 0.95;
export const SMALL_BATCH_FILE_RATIO = 0.95;
export const SMALL_SINGLES_RPM = 3_000;
const ADAPTIVE = "d-adaptive";

export type GqaSaturatedReport = {
  readonly model: string;
  readonly component: string;
  readonly copies: number;
  readonly engine_direct_rpm: number;
  readonly engine_direct_closed_loop: EngineClosedLoopReport;
  readonly scenario: ScenarioReport;
};

export type SmallBatchFileReport = {
  readonly model: string;
  readonly component: string;
  readonly lines: number;
  readonly prompt_tokens: number;
  readonly max_tokens: number;
  /** The file's upload (POST /v1/uploads, the S3 PUT, complete): before the drain's clock starts, metered with it. */
  readonly upload_s: number;
  /** From POST /v1/batches until the batch was completed, and its AWS requests per line (from before the upload). */
  readonly pipeline: BatchLinesReport;
  readonly pipeline_lines_per_min: number;
  readonly engine: EngineDrain;
};

export type SinglesStep = {
  readonly rpm: number;
  readonly held: boolean;
  readonly reason: string;
  readonly requests: number;
  readonly shed: number;
  readonly failed: number;
  readonly unfinished: number;
  readonly p50_ms: number;
  readonly p95_ms: number;
  readonly engine_p95_ms: number;
  /** Answers per minute over the arrivals' span (shifted by the median latency). */
  readonly served_rpm: number;
  readonly aws_requests_per_job: number | null;
  readonly machine_load: number;
};

export type SmallSinglesReport = {
  readonly model: string;
  readonly component: string;
  readonly prompt_tokens: number;
  readonly max_tokens: number;
  readonly step_s: number;
  readonly p95_bound_over_engine_ms: number;
  readonly steps: readonly SinglesStep[];
  /** The highest rate that held below the lowest that broke (ramp.ts); null when none held. */
  readonly sustained_rpm: number | null;
  /** The step the profiles are summarized over: the highest rate run. */
  readonly profiled_rpm: number | null;
  /** The stack's processes over that step, busiest first. */
  readonly cpu_profile: readonly ProfileSummary[];
};

export type RouteScenariosReport = {
  readonly gqa_saturated: GqaSaturatedReport | null;
  readonly small_batch_file: SmallBatchFileReport | null;
  readonly small_singles: SmallSinglesReport | null;
};

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

/** The engine's ceiling on the GQA route: the higher of its closed loop and its run of the trace beside (d) (as targets.ts reads it). */
export function gqaCeiling(report: GqaSaturatedReport): number {
  return Math.max(report.engine_direct_rpm, report.scenario.engine_direct.throughput_rpm);
}

/** A drain's rate against the engine's on the same lines: both must have answered every line to count. */
export function drainRatio(pipelineLinesPerMin: number, engine: EngineDrain): number {
  return engine.lines_per_min > 0 ? pipelineLinesPerMin / engine.lines_per_min : Number.NaN;
}

export function routeTargets(report: RouteScenariosReport): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const gqa = report.gqa_saturated;
  const d = gqa?.scenario.policies.find((p) => p.name === ADAPTIVE);
  if (gqa && d) {
    const ceiling = gqaCeiling(gqa);
    const ratio = d.throughput_rpm / ceiling;
    checks.push({
      name: "gqa_saturated_vs_engine",
      target: `>= ${GQA_SATURATED_RATIO} of the engine alone on ${gqa.model} (the higher of its closed loop and its run beside)`,
      measured: `${fmt(d.throughput_rpm, 0)} / ${fmt(ceiling, 0)} rpm = ${fmt(ratio)} over ${fmt(d.measured_turnovers ?? Number.NaN, 1)} turnovers`,
      value: ratio,
      met: ratio >= GQA_SATURATED_RATIO,
    });
    checks.push(...engineCeilingCheck(gqa.engine_direct_rpm, [gqa.scenario], "gqa_no_policy_above_engine"));
  }
  const file = report.small_batch_file;
  if (file) {
    const ratio = drainRatio(file.pipeline_lines_per_min, file.engine);
    const complete = file.pipeline.complete && file.engine.complete;
    checks.push({
      name: "small_batch_file_vs_engine",
      target: `>= ${SMALL_BATCH_FILE_RATIO} of the engine alone's drain of the same ${file.lines} lines on ${file.model}`,
      measured: `${fmt(file.pipeline_lines_per_min, 0)} / ${fmt(file.engine.lines_per_min, 0)} lines/min = ${fmt(ratio)}${complete ? "" : " (not every line answered)"}; ${fmt(file.pipeline.requests_per_job)} AWS requests a line`,
      value: ratio,
      met: complete && ratio >= SMALL_BATCH_FILE_RATIO,
    });
  }
  const singles = report.small_singles;
  if (singles) {
    const rpm = singles.sustained_rpm ?? 0;
    const broke = singles.steps.find((s) => !s.held);
    checks.push({
      name: "small_singles_sustained_rpm",
      target: `>= ${SMALL_SINGLES_RPM} single jobs/min on ${singles.model} without shedding, p95 within ${fmt(singles.p95_bound_over_engine_ms / 1000, 1)} s of the engine's`,
      measured: `${fmt(rpm, 0)} jobs/min${broke ? `; broke at ${fmt(broke.rpm, 0)}: ${broke.reason}` : "; no step broke"}`,
      value: rpm,
      met: rpm >= SMALL_SINGLES_RPM,
    });
  }
  return checks;
}

/** The text report's lines for the route scenarios (a blank line before each). */
export function routeLines(report: RouteScenariosReport): string[] {
  const lines: string[] = [];
  const gqa = report.gqa_saturated;
  if (gqa) {
    lines.push("", `route ${gqa.model}: ${gqa.component}, ${gqa.copies} copies; ${closedLoopLine(gqa.engine_direct_rpm, gqa.engine_direct_closed_loop)}`);
    lines.push(...scenarioLines(gqa.scenario, { allPhases: true }));
  }
  const file = report.small_batch_file;
  if (file) {
    const p = file.pipeline;
    lines.push(
      "",
      `small-batch-file: one file of ${file.lines} lines (${file.prompt_tokens}+${file.max_tokens}) on ${file.model}, uploaded in ${file.upload_s.toFixed(1)} s; ` +
        `d-adaptive ${p.complete ? "completed it" : `answered ${p.lines_answered ?? "?"} of them, NOT completed,`} in ${p.drained_in_s.toFixed(1)} s (${file.pipeline_lines_per_min.toFixed(0)} lines/min, load ${p.machine_load.toFixed(1)}); ` +
        `the engine alone ${file.engine.complete ? "answered" : `answered ${file.engine.answered} of`} them in ${file.engine.drained_in_s.toFixed(1)} s (${file.engine.lines_per_min.toFixed(0)} lines/min): ${fmt(drainRatio(file.pipeline_lines_per_min, file.engine))}x`,
      serverlessLine(ADAPTIVE, p),
    );
  }
  const singles = report.small_singles;
  if (singles) {
    lines.push(
      "",
      `small-singles: single jobs (${singles.prompt_tokens}+${singles.max_tokens}) on ${singles.model}, a ramp of ${singles.step_s.toFixed(0)} s Poisson steps; sustained ${singles.sustained_rpm === null ? "none" : `${singles.sustained_rpm.toFixed(0)} jobs/min`}`,
      ...singles.steps.map(
        (s) =>
          `  ${s.rpm.toFixed(0).padStart(6)}/min ${s.held ? "held  " : "BROKE "} served ${s.served_rpm.toFixed(0)}/min, p50 ${(s.p50_ms / 1000).toFixed(2)} s, p95 ${(s.p95_ms / 1000).toFixed(2)} s (engine ${(s.engine_p95_ms / 1000).toFixed(2)} s), shed ${s.shed}, failed ${s.failed}, unanswered ${s.unfinished} of ${s.requests}; AWS ${s.aws_requests_per_job === null ? "-" : s.aws_requests_per_job.toFixed(1)} requests/job; load ${s.machine_load.toFixed(1)}: ${s.reason}`,
      ),
    );
    if (singles.profiled_rpm !== null) lines.push(`  CPU over the ${singles.profiled_rpm.toFixed(0)}/min step, busiest process first:`);
    for (const p of singles.cpu_profile) {
      lines.push(`    ${p.process}: ${(p.busy_ms / 1000).toFixed(1)} s busy of ${(p.window_ms / 1000).toFixed(1)} s (${(100 * p.cpu_share).toFixed(0)}% of a core); packages ${p.packages.slice(0, 4).map((f) => `${f.name} ${(100 * f.share).toFixed(0)}%`).join(", ")}`);
      lines.push(...p.functions.slice(0, 5).map((f) => `      ${(100 * f.share).toFixed(1).padStart(5)}%  ${f.name}`));
    }
  }
  return lines;
}

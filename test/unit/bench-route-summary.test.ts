import { describe, expect, it } from "vitest";
import type { BatchLinesReport } from "../../tools/bench/batch-lines.ts";
import type { RunResult } from "../../tools/bench/run.ts";
import { drainRatio, type GqaSaturatedReport, gqaCeiling, routeLines, type RouteScenariosReport, routeTargets, type SmallBatchFileReport, type SmallSinglesReport } from "../../tools/bench/route-summary.ts";
import { serverlessCost } from "../../tools/bench/aws-cost.ts";

const result = (name: string, over: Partial<RunResult> = {}): RunResult => ({
  name, throughput_rpm: 2_400, completed_rpm: 2_400, tokens_per_s: 20_000, p50_ms: 20_000, p95_ms: 30_000, p99_ms: 31_000, mean_ms: 20_000,
  latency_censored: 0, queue_wait_p50_ms: 8_000, phases: null, eta_error: null, batch_fill: 0.98, mean_batch: 500, gpu_busy: 1, cost_per_million_tokens: 0.5,
  requests: 2_250, succeeded: 2_000, failed: 0, rejected: 0, unfinished: 250, measured_from_s: 12, measured_to_s: 40, measured_turnovers: 2.3, ran_with: [], machine_load: 1.5, errors: [],
  ...over,
});

const gqa = (engineTrace: number, closedLoop: number, d: number): GqaSaturatedReport => ({
  model: "llama-3-8b", component: "llama-3-8b-ic", copies: 2, engine_direct_rpm: closedLoop,
  engine_direct_closed_loop: { concurrency: 512, completed: 1_000, completed_rpm: closedLoop, measured_from_s: 15, measured_to_s: 40, measured_turnovers: 2, tokens_per_s: 21_000, gpu_busy: 1, mean_batch: 510 },
  scenario: {
    name: "gqa-saturated", title: "saturated on llama-3-8b", kind: "saturated", targeted: true, seed: 1, offered_rpm: 3_000, duration_s: 45, requests: 2_250,
    engine_direct_p50_ms: 20_000, engine_direct: result("engine alone", { throughput_rpm: engineTrace }),
    policies: [result("d-adaptive", { throughput_rpm: d, phases: { median: { submit_ms: 40, queue_ms: 8_000, gpu_ms: 12_000, notify_ms: 30 }, slowest_1pct: { submit_ms: 900, queue_ms: 15_000, gpu_ms: 13_000, notify_ms: 200 }, slowest_count: 20 } })],
  },
});

const cost = (lines: number, complete: boolean): BatchLinesReport => ({
  ...serverlessCost({ requests: { sqs: { SendMessageBatch: lines / 10, DeleteMessageBatch: lines / 10 }, dynamodb: { BatchWriteItem: lines / 25 } }, dynamodb_capacity: { read_units: 0, write_units: lines }, dynamodb_by_table: {}, lambda: {} }, lines, 1e-4),
  kind: "batch-line", complete, drained_in_s: 220, machine_load: 1.2,
});

const file = (pipelineRate: number, engineRate: number, complete = true): SmallBatchFileReport => ({
  model: "llama-3-1b", component: "llama-3-1b-ic", lines: 20_000, prompt_tokens: 512, max_tokens: 512, upload_s: 3.2,
  pipeline: cost(20_000, complete), pipeline_lines_per_min: pipelineRate,
  engine: { lines: 20_000, answered: 20_000, drained_in_s: (20_000 * 60) / engineRate, lines_per_min: engineRate, complete: true },
});

const step = (rpm: number, held: boolean, reason: string) => ({
  rpm, held, reason, requests: rpm / 3, shed: held ? 0 : 12, failed: 0, unfinished: 0, p50_ms: 400, p95_ms: 900, engine_p95_ms: 300, served_rpm: rpm, aws_requests_per_job: 9.5, machine_load: 1.8,
});

const singles = (sustained: number | null): SmallSinglesReport => ({
  model: "llama-3-1b", component: "llama-3-1b-ic", prompt_tokens: 128, max_tokens: 64, step_s: 20, p95_bound_over_engine_ms: 2_000,
  steps: [step(2_000, true, "every job answered"), step(3_000, true, "every job answered"), step(4_500, false, "12 of 1500 submits shed")],
  sustained_rpm: sustained, profiled_rpm: 4_500,
  cpu_profile: [{ process: "osls offline pid 42", window_ms: 20_000, busy_ms: 18_000, cpu_share: 0.9, functions: [{ name: "handle app/submit.ts:10", ms: 9_000, share: 0.5 }], packages: [{ name: "batchline", ms: 9_000, share: 0.5 }] }],
});

const report = (over: Partial<RouteScenariosReport>): RouteScenariosReport => ({ gqa_saturated: null, small_batch_file: null, small_singles: null, ...over });
const byName = (r: RouteScenariosReport) => new Map(routeTargets(r).map((c) => [c.name, c]));

describe("the 8B and 1B routes' targets (issue 15 item 8, issue 18 item 3)", () => {
  it("holds the GQA route's pipeline to the higher of the engine's two measurements", () => {
    expect(gqaCeiling(gqa(2_500, 2_450, 2_400))).toBe(2_500);
    const checks = byName(report({ gqa_saturated: gqa(2_500, 2_450, 2_400) }));
    expect(checks.get("gqa_saturated_vs_engine")).toMatchObject({ met: true, value: 0.96, measured: "2400 / 2500 rpm = 0.96 over 2.3 turnovers" });
    expect(checks.get("gqa_no_policy_above_engine")).toMatchObject({ met: true });
    const short = byName(report({ gqa_saturated: gqa(2_500, 2_600, 2_400) })).get("gqa_saturated_vs_engine");
    expect(short?.met).toBe(false);
    expect(short?.value).toBeCloseTo(2_400 / 2_600);
  });

  it("fails the GQA route's ceiling check when the pipeline is measured above the engine", () => {
    expect(byName(report({ gqa_saturated: gqa(2_000, 2_000, 2_100) })).get("gqa_no_policy_above_engine")).toMatchObject({ met: false });
  });

  it("holds a batch file's drain to the engine's drain of the same lines, and only when every line was answered", () => {
    expect(drainRatio(5_500, file(5_500, 5_700).engine)).toBeCloseTo(5_500 / 5_700);
    expect(byName(report({ small_batch_file: file(5_500, 5_700) })).get("small_batch_file_vs_engine")).toMatchObject({ met: true });
    expect(byName(report({ small_batch_file: file(5_000, 5_700) })).get("small_batch_file_vs_engine")).toMatchObject({ met: false });
    const incomplete = byName(report({ small_batch_file: file(5_600, 5_700, false) })).get("small_batch_file_vs_engine");
    expect(incomplete?.met).toBe(false);
    expect(incomplete?.measured).toContain("not every line answered");
    expect(incomplete?.measured).toContain("0.24 AWS requests a line");
    const partial = { ...file(1_200, 5_700, false), pipeline: { ...cost(20_000, false), lines_answered: 4_400 } };
    expect(routeLines(report({ small_batch_file: partial })).join("\n")).toContain("d-adaptive answered 4400 of them, NOT completed, in 220.0 s (1200 lines/min");
  });

  it("holds single jobs to 3,000 a minute sustained, naming where the ramp broke", () => {
    expect(byName(report({ small_singles: singles(3_000) })).get("small_singles_sustained_rpm")).toMatchObject({ met: true, value: 3_000, measured: "3000 jobs/min; broke at 4500: 12 of 1500 submits shed" });
    expect(byName(report({ small_singles: singles(2_000) })).get("small_singles_sustained_rpm")).toMatchObject({ met: false });
    expect(byName(report({ small_singles: singles(null) })).get("small_singles_sustained_rpm")).toMatchObject({ met: false, value: 0 });
  });

  it("checks nothing for a scenario that did not run", () => {
    expect(routeTargets(report({}))).toEqual([]);
  });

  it("prints each scenario: the GQA table with where the time went, the drain against the engine's, the ramp and the CPU profile", () => {
    const text = routeLines(report({ gqa_saturated: gqa(2_500, 2_450, 2_400), small_batch_file: file(5_500, 5_700), small_singles: singles(3_000) })).join("\n");
    expect(text).toContain("route llama-3-8b: llama-3-8b-ic, 2 copies; engine alone, closed loop of 512: 2450.0 req/min");
    expect(text).toMatch(/d-adaptive, s: slowest 20 \(1%\) submit 0\.90, queue 15\.00/);
    expect(text).toContain("d-adaptive completed it in 220.0 s (5500 lines/min, load 1.2); the engine alone answered them in 210.5 s (5700 lines/min): 0.96x");
    expect(text).toContain("d-adaptive, AWS per batch-line job over 20000: 0.24 requests");
    expect(text).toMatch(/4500\/min BROKE .*shed 12.*: 12 of 1500 submits shed/);
    expect(text).toContain("CPU over the 4500/min step, busiest process first:");
    expect(text).toContain("osls offline pid 42: 18.0 s busy of 20.0 s (90% of a core); packages batchline 50%");
    expect(text).toContain(" 50.0%  handle app/submit.ts:10");
  });
});

import { describe, expect, it } from "vitest";
import { charts } from "../../tools/bench/charts.ts";
import type { Outcome } from "../../tools/bench/outcome.ts";
import { type BenchReport, formatReport } from "../../tools/bench/report.ts";
import type { RunResult } from "../../tools/bench/run.ts";
import { escapeXml, lineChart, linearTicks } from "../../tools/bench/svg.ts";
import { checkTargets } from "../../tools/bench/targets.ts";

const result = (name: string, over: Partial<RunResult> = {}): RunResult => ({
  name, throughput_rpm: 400, completed_rpm: 398, tokens_per_s: 3400, p50_ms: 6800, p95_ms: 7600, p99_ms: 8100, mean_ms: 6900,
  latency_censored: 0, queue_wait_p50_ms: 120, phases: null, eta_error: null, batch_fill: 0.4, mean_batch: 44, gpu_busy: 0.95, cost_per_million_tokens: 1.15,
  requests: 100, succeeded: 100, failed: 0, rejected: 0, unfinished: 0, measured_from_s: 0, measured_to_s: 60, ran_with: [], machine_load: 1, errors: [],
  ...over,
});

const scenario = (name: string, offered: number, policies: RunResult[], engineP50 = 6700) => ({
  name, title: name, kind: name === "saturated" ? ("saturated" as const) : ("latency" as const), targeted: true, seed: 1,
  offered_rpm: offered, duration_s: 60, requests: 100, engine_direct_p50_ms: engineP50, engine_direct: result("engine alone", { p50_ms: engineP50 }), policies,
});

const report: BenchReport = {
  schema_version: 1, mode: "quick", seed: 1, started_at: "2026-11-27T00:00:00.000Z", wall_s: 400,
  machine: { cpus: 2, node: "v22", platform: "linux-x64", load_average_at_start: [1, 1, 1] },
  route: { model: "m", component: "c", profile: "p", gpu: "h100-80gb", gpus: 1, price_per_gpu_hour: 14.13, max_sequences: 128, token_budget: 112000, admission_limit_512_512: 109 },
  engine_direct_rpm: 550,
  engine_direct_closed_loop: { concurrency: 109, completed: 200, completed_rpm: 540, measured_from_s: 12, measured_to_s: 35, tokens_per_s: 4693, gpu_busy: 1, mean_batch: 108.8 },
  micro: { sizes: [{ messages: 100, us_per_message: 0.2, pack_us_per_message: 0.1 }], us_per_message: 0.2 },
  policies: ["a-one-at-a-time", "b-esm-defaults", "d-adaptive"].map((name) => ({
    name, title: name, engine: "lmi-rolling", event_source_mapping: { batch_size: 10, batching_window_seconds: 0, maximum_concurrency: null }, batcher_reserved_concurrency: null, settings: {}, settings_source: "stored",
  })),
  scenarios: [
    scenario("ten-percent", 59, [result("d-adaptive", { p50_ms: 3300 })], 3200),
    scenario("poisson-400", 400, [result("a-one-at-a-time", { throughput_rpm: 19, p50_ms: 20_000, latency_censored: 0.9 }), result("b-esm-defaults", { p95_ms: 12_000 }), result("d-adaptive")]),
    scenario("saturated", 720, [result("a-one-at-a-time", { throughput_rpm: 19 }), result("d-adaptive", { throughput_rpm: 540 })]),
  ],
  diurnal: null,
  targets: [],
};

describe("bench report", () => {
  it("checks the issue's targets from the numbers, met or not", () => {
    const checks = checkTargets({
      engineDirectRpm: 550, scenarios: report.scenarios, microUsPerMessage: 0.2, adaptive: "d-adaptive", oneAtATime: "a-one-at-a-time", baselines: ["b-esm-defaults"],
    });
    const byName = new Map(checks.map((c) => [c.name, c]));
    expect(byName.get("saturated_vs_engine")).toMatchObject({ met: true });
    expect(byName.get("saturated_vs_engine")?.value).toBeCloseTo(540 / 550);
    expect(byName.get("adaptive_vs_one_at_a_time")).toMatchObject({ met: true });
    expect(byName.get("p50_at_400rpm")).toMatchObject({ met: true, value: 6800, measured: "6800 ms (engine alone 6700 ms)" });
    expect(byName.get("p99_at_400rpm")).toMatchObject({ met: true, value: 8100, measured: "8100 ms (engine alone 8100 ms)" });
    expect(byName.get("p50_overhead_at_10pct")).toMatchObject({ met: true, value: 100 });
    // p95 7.6 s against 12 s at the same throughput: 37% lower.
    expect(byName.get("adaptive_vs_b-esm-defaults")).toMatchObject({ met: true });
    expect(byName.get("packing_us_per_message")).toMatchObject({ met: true });
  });

  it("prints one table per scenario, marking latencies that are lower bounds", () => {
    const text = formatReport(report);
    expect(text).toContain("poisson-400");
    expect(text).toMatch(/a-one-at-a-time\s+19\.0\s+3400\s+≥20\.00/);
    expect(text).toContain("engine alone, closed loop of 109");
    const phases = { submit_ms: 40, queue_ms: 100, gpu_ms: 6500, notify_ms: 60 };
    const withPhases = { ...report, scenarios: [scenario("poisson-400", 400, [result("d-adaptive", { phases: { median: phases, slowest_1pct: { ...phases, queue_ms: 3000 }, slowest_count: 6 } })])] };
    expect(formatReport(withPhases)).toContain("d-adaptive, s: slowest 6 (1%) submit 0.04, queue 3.00, GPU 6.50, notify 0.06; median submit 0.04, queue 0.10, GPU 6.50, notify 0.06");
    const eta = { jobs: 120, median_ms: 420, p90_ms: 1310, bias_ms: -150, waited: { jobs: 40, median_ms: 900, p90_ms: 2100 } };
    const withEta = { ...report, scenarios: [scenario("saturated", 600, [result("d-adaptive", { eta_error: eta })])] };
    expect(formatReport(withEta)).toContain("d-adaptive, start estimated at submit, |error| s: median 0.42, p90 1.31 over 120 jobs (bias -0.15); the 40 that waited ≥ 1 s: median 0.90, p90 2.10");
  });

  it("draws the latency and throughput curves as SVG", () => {
    const outcomes: Outcome[] = Array.from({ length: 20 }, (_, i) => ({
      index: i, arrivalMs: i * 150, finishedMs: i * 150 + 6000 + i * 10, promptTokens: 512, maxTokens: 512, status: "succeeded", completionTokens: 512,
    }));
    const raw = new Map([["poisson-400", new Map([["engine alone", outcomes], ["d-adaptive", outcomes]])], ["saturated", new Map([["d-adaptive", outcomes]])]]);
    const files = charts(report, raw);
    expect([...files.keys()].sort()).toEqual(["latency-cdf-400.svg", "latency.svg", "saturated-timeline.svg", "throughput.svg"]);
    for (const svg of files.values()) {
      expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
      expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
      expect(svg).toContain("<path d=\"M");
    }
    expect(files.get("latency.svg")).toContain("d-adaptive p95");
  });

  it("writes SVG text safely and picks round ticks", () => {
    expect(escapeXml(`a < b & "c"`)).toBe("a &lt; b &amp; &quot;c&quot;");
    expect(linearTicks(0, 100)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(linearTicks(0, 7)).toEqual([0, 2, 4, 6]);
    const svg = lineChart({ title: "t <1>", xLabel: "x", yLabel: "y", logY: true, series: [{ name: "s", points: [[1, 10], [2, 1000], [3, 0]] }] });
    expect(svg).toContain("t &lt;1&gt;");
    // A zero cannot go on a log scale: it is left out, not drawn at infinity.
    expect(svg).not.toContain("Infinity");
    expect(svg).not.toContain("NaN");
  });
});

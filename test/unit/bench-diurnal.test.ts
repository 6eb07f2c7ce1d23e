import { describe, expect, it } from "vitest";
import { charts } from "../../tools/bench/charts.ts";
import type { BenchReport } from "../../tools/bench/report.ts";
import { DAY_SHAPE, diurnalPlan, hourOf } from "../../tools/bench/diurnal-plan.ts";
import { type DiurnalReport, diurnalTargets } from "../../tools/bench/diurnal.ts";
import { copyMs, type FleetReport, servingAt, summarizeFleet, type CopySample } from "../../tools/bench/diurnal-summary.ts";
import type { Outcome } from "../../tools/bench/outcome.ts";
import { generateTrace, offeredRpm, profileRpm } from "../../tools/bench/trace.ts";

const outcome = (index: number, arrivalMs: number, over: Partial<Outcome> = {}): Outcome => ({
  index, arrivalMs, promptTokens: 512, maxTokens: 512, status: "succeeded", finishedMs: arrivalMs + 1000, completionTokens: 512, ...over,
});

describe("the diurnal plan", () => {
  it("compresses a day: idle at both ends, a peak above one copy's capacity in the middle", () => {
    const plan = diurnalPlan("quick", 1);
    expect(plan.dayMs).toBe(360_000);
    const points = plan.trace.arrivals.kind === "profile" ? plan.trace.arrivals.points : [];
    expect(profileRpm(points, plan.dayMs * (0.5 / 24))).toBe(0);
    expect(profileRpm(points, plan.dayMs * (11 / 24))).toBe(plan.peakRpm);
    expect(plan.peakRpm).toBeGreaterThan(555);
    expect(profileRpm(points, plan.dayMs * (23 / 24))).toBe(0);
    expect(hourOf(plan, plan.dayMs / 2)).toBe(12);
    expect(DAY_SHAPE[0]?.[0]).toBe(0);
    expect(DAY_SHAPE.at(-1)?.[0]).toBe(24);
  });

  it("gives a trace whose arrivals follow the day", () => {
    const plan = diurnalPlan("quick", 7);
    const trace = generateTrace(plan.trace);
    const mean = offeredRpm(plan.trace.arrivals, plan.dayMs);
    // A Poisson count: within four standard deviations of the mean rate × the day.
    const expected = (mean * plan.dayMs) / 60_000;
    expect(Math.abs(trace.length - expected)).toBeLessThan(4 * Math.sqrt(expected));
    expect(trace.some((r) => hourOf(plan, r.atMs) < 1 || hourOf(plan, r.atMs) > 21)).toBe(false);
  });
});

describe("summarizeFleet", () => {
  const samples: CopySample[] = [
    { atMs: 0, billed: 0, serving: 0 },
    { atMs: 1000, billed: 1, serving: 0 },
    { atMs: 2000, billed: 1, serving: 1 },
    { atMs: 6000, billed: 2, serving: 2 },
    { atMs: 8000, billed: 0, serving: 0 },
  ];

  it("integrates copies over time as a step function", () => {
    expect(copyMs(samples, 0, 10_000, (s) => s.billed)).toBe(1000 + 4000 + 4000);
    expect(copyMs(samples, 1500, 7000, (s) => s.serving)).toBe(4000 + 2000);
    expect(servingAt(samples, 1999)).toBe(0);
    expect(servingAt(samples, 2000)).toBe(1);
  });

  it("prices the GPU-hours the fleet held and counts the jobs that arrived at zero copies", () => {
    const outcomes = [
      outcome(0, 500, { waitedForWarming: true, queueWaitMs: 1800 }),
      outcome(1, 2500),
      outcome(2, 9000, { status: "failed", finishedMs: 9500, completionTokens: 0 }),
    ];
    const report = summarizeFleet("autoscaled", outcomes, samples, { fromMs: 0, toMs: 10_000 }, { pricePerGpuHour: 3600, gpusPerCopy: 1 }, 30_000);
    // 9,000 copy-ms = 0.0025 GPU-hours at $3,600 an hour: $9 for 1,024 tokens.
    expect(report.gpu_hours).toBeCloseTo(0.0025, 10);
    expect(report.cost_usd).toBeCloseTo(9, 10);
    expect(report.cost_per_million_tokens).toBeCloseTo((9 * 1e6) / 1024, 6);
    expect(report.errors).toBe(1);
    expect(report.mean_copies).toBeCloseTo(0.9, 10);
    expect(report.max_copies).toBe(2);
    expect(report.warming).toEqual({ jobs: 1, queue_wait_p50_ms: 1800, queue_wait_max_ms: 1800, arrived_at_zero: 2, answered_at_zero: 1 });
    expect(report.met_latency_objective).toBe(true);
  });

  it("misses the latency objective when a request is still unanswered", () => {
    const report = summarizeFleet("fixed", [outcome(0, 0, { status: "unfinished", finishedMs: undefined })], samples, { fromMs: 0, toMs: 10_000 }, { pricePerGpuHour: 1, gpusPerCopy: 1 }, 30_000);
    expect(report.met_latency_objective).toBe(false);
    expect(report.cost_per_million_tokens).toBeNull();
  });
});

describe("the diurnal targets", () => {
  const fleet = (name: string, over: Partial<FleetReport>): DiurnalReport["fleets"][number] => ({
    ...summarizeFleet(name, [outcome(0, 0)], [{ atMs: 0, billed: 1, serving: 1 }], { fromMs: 0, toMs: 1000 }, { pricePerGpuHour: 1, gpusPerCopy: 1 }, 30_000),
    copies_over_time: [[0, 1, 1]],
    scaling_activities: [],
    machine_load: 1,
    ...over,
  });
  const day = (autoscaled: Partial<FleetReport>, ratio: number): DiurnalReport => ({
    name: "diurnal", title: "t", seed: 1, compression: 240, day_s: 360, requests: 1, offered_rpm_mean: 1, peak_rpm: 1, delays: {},
    fleets: [fleet("autoscaled", autoscaled), fleet("fixed", {})], cost_ratio: ratio,
  });
  const warming = (arrived: number, answered: number) => ({ jobs: arrived, queue_wait_p50_ms: 1, queue_wait_max_ms: 1, arrived_at_zero: arrived, answered_at_zero: answered });

  it("holds when the autoscaled fleet is 35% cheaper, nothing failed and every job that arrived at zero was answered", () => {
    const checks = diurnalTargets(day({ warming: warming(3, 3) }, 0.6));
    expect(checks.map((c) => [c.name, c.met])).toEqual([["diurnal_cost_vs_fixed", true], ["diurnal_errors", true], ["diurnal_answered_at_zero", true]]);
  });

  it("misses on a smaller saving, an error, a job left at zero, or a day that never went to zero", () => {
    expect(diurnalTargets(day({ warming: warming(3, 3) }, 0.7))[0]?.met).toBe(false);
    expect(diurnalTargets(day({ warming: warming(3, 3), errors: 1 }, 0.6))[1]?.met).toBe(false);
    expect(diurnalTargets(day({ warming: warming(3, 2) }, 0.6))[2]?.met).toBe(false);
    expect(diurnalTargets(day({ warming: warming(0, 0) }, 0.6))[2]?.met).toBe(false);
  });
});

describe("the diurnal chart", () => {
  it("draws each fleet's copies over the hours of the day", () => {
    const fleet = (name: string, copies: readonly (readonly [number, number, number])[]) => ({
      ...summarizeFleet(name, [], [], { fromMs: 0, toMs: 1 }, { pricePerGpuHour: 1, gpusPerCopy: 1 }, 1),
      copies_over_time: copies,
      scaling_activities: [],
      machine_load: 1,
    });
    const diurnal: DiurnalReport = {
      name: "diurnal", title: "t", seed: 1, compression: 240, day_s: 360, requests: 0, offered_rpm_mean: 0, peak_rpm: 0, delays: {}, cost_ratio: null,
      fleets: [fleet("autoscaled", [[0, 0, 0], [15_000, 1, 0], [150_000, 2, 2]]), fleet("fixed", [[0, 2, 2]])],
    };
    const files = charts({ scenarios: [], policies: [], engine_direct_rpm: null, diurnal } as unknown as BenchReport, new Map());
    const svg = files.get("diurnal-copies.svg") ?? "";
    expect(svg).toContain("autoscaled");
    expect(svg).toContain("fixed");
    expect(svg).toContain("hour of the day");
  });
});

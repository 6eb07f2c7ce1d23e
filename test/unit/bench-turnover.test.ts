import { describe, expect, it } from "vitest";
import { simulatedClockAt, type TimedSnapshot } from "../../tools/bench/gpu-sampler.ts";
import { turnoverThroughput, windowThroughput } from "../../tools/bench/metrics.ts";
import type { Outcome } from "../../tools/bench/outcome.ts";
import { aboveEngineCeiling, engineCeilingCheck } from "../../tools/bench/targets.ts";

/** `size` answers every `periodMs` from `firstMs`, spread over `spreadMs` each: a batch turning over in waves. */
function waves(size: number, periodMs: number, firstMs: number, count: number, spreadMs = 0): number[] {
  return Array.from({ length: count }, (_, w) => Array.from({ length: size }, (_, i) => firstMs + w * periodMs + (size > 1 ? (spreadMs * i) / (size - 1) : 0))).flat();
}

const answered = (finishedMs: number, index: number): Outcome => ({ index, arrivalMs: 0, finishedMs, promptTokens: 512, maxTokens: 512, status: "succeeded", completionTokens: 512 });

describe("throughput over whole turnovers (issue 15 item 7)", () => {
  it("counts whole waves: 100 answers every 10 s is 600 a minute, wherever the steady part starts and ends", () => {
    const times = waves(100, 10_000, 5_000, 8, 300);
    for (const [from, to] of [[0, 80_000], [6_000, 61_000], [5_100, 75_200], [12_000, 43_000]] as const) {
      const whole = turnoverThroughput(times, from, to, 10_000);
      expect(whole).toBeDefined();
      expect(whole?.rpm).toBeCloseTo(600, -1);
      // Whole waves: a multiple of the wave's size.
      expect((whole?.completed ?? 0) % 100).toBe(0);
      expect(whole?.turnovers).toBeGreaterThanOrEqual(1);
    }
  });

  it("where a plain window over the same steady part, cutting a wave, overcounts", () => {
    const times = waves(100, 10_000, 5_000, 8, 300);
    // 14.9-35.2 s holds the waves of 15 s and 25 s and two thirds of 35 s's: 267 answers in 20.3 s.
    const plain = windowThroughput(times.map(answered), 14_900, 35_200);
    expect(plain.rpm).toBeGreaterThan(1.25 * 600);
    expect(turnoverThroughput(times, 14_900, 35_200, 10_000)?.rpm).toBeCloseTo(600, -1);
  });

  it("measures a steady flow within one answer", () => {
    // One answer every 100 ms: 600 a minute, no waves.
    const times = Array.from({ length: 600 }, (_, i) => 1_000 + 100 * i + (i % 3) * 20);
    const whole = turnoverThroughput(times, 10_000, 50_000, 12_000);
    expect(whole?.rpm).toBeGreaterThan(590);
    expect(whole?.rpm).toBeLessThan(610);
  });

  it("says how many turnovers the window held, and gives nothing without two answers", () => {
    const times = waves(50, 12_000, 0, 3);
    expect(turnoverThroughput(times, 0, 30_000, 12_000)?.turnovers).toBeCloseTo(2, 0);
    // A steady part within one wave has no wave's end to start from and another to end at.
    expect(turnoverThroughput(times, 11_000, 13_000, 12_000)).toBeUndefined();
    expect(turnoverThroughput([], 0, 10_000, 1_000)).toBeUndefined();
    expect(turnoverThroughput([5_000], 0, 10_000, 1_000)).toBeUndefined();
  });
});

describe("the rate on the GPU's clock", () => {
  const sample = (atMs: number, nowMs: number): TimedSnapshot => ({ atMs, nowMs, busyMs: 0, sequenceMs: 0, tokensGenerated: 0, outstanding: 0, copies: 1 });

  it("reads the emulator's clock between its snapshots, and at the wall's pace beyond them", () => {
    // An emulator at twice real time, from wall 1,000 ms.
    const samples = [sample(1_000, 0), sample(2_000, 2_000), sample(3_000, 4_000)];
    expect(simulatedClockAt(samples, 1_500)).toBe(1_000);
    expect(simulatedClockAt(samples, 3_000)).toBe(4_000);
    expect(simulatedClockAt(samples, 500)).toBe(-500);
    expect(simulatedClockAt(samples, 3_500)).toBe(4_500);
    expect(simulatedClockAt([], 42)).toBe(42);
  });

  it("divides whole waves by the time that passed on it", () => {
    const times = waves(100, 10_000, 5_000, 8, 300);
    // The GPU's clock runs twice as fast as the wall's: the same answers over twice the time.
    const onFastClock = turnoverThroughput(times, 0, 80_000, 20_000, (a, b) => 2 * (b - a));
    expect(onFastClock?.rpm).toBeCloseTo(300, -1);
    expect(onFastClock?.turnovers).toBeGreaterThanOrEqual(1);
  });
});

describe("no policy above the engine alone (issue 15 item 7)", () => {
  const scenario = (rpm: Record<string, number>, kind: "saturated" | "latency" = "saturated") => ({
    name: kind === "saturated" ? "saturated" : "poisson-400",
    kind,
    engine_direct_p50_ms: 0,
    policies: Object.entries(rpm).map(([name, throughput_rpm]) => ({ name, throughput_rpm, p50_ms: 0, p95_ms: 0, p99_ms: 0 })),
  });

  it("names every policy more than 3% above the engine's ceiling in a saturated run", () => {
    const scenarios = [scenario({ "c-fixed-window": 617, "d-adaptive": 560 }), scenario({ "b-esm-defaults": 900 }, "latency")];
    expect(aboveEngineCeiling(557, scenarios)).toEqual([{ scenario: "saturated", policy: "c-fixed-window", rpm: 617, ratio: 617 / 557 }]);
    const [check] = engineCeilingCheck(557, scenarios);
    expect(check?.met).toBe(false);
    expect(check?.measured).toContain("c-fixed-window 617 rpm");
  });

  it("reads the ceiling as the higher of the engine's closed loop and its run of the same trace", () => {
    const withEngine = { ...scenario({ "d-adaptive": 600 }), engine_direct: { p50_ms: 0, p99_ms: 0, throughput_rpm: 590 } };
    expect(aboveEngineCeiling(520, [withEngine])).toEqual([]);
    expect(aboveEngineCeiling(Number.NaN, [withEngine])).toEqual([]);
    expect(aboveEngineCeiling(520, [{ ...withEngine, engine_direct: { p50_ms: 0, p99_ms: 0, throughput_rpm: 500 } }])).toHaveLength(1);
  });

  it("lets the measurement's noise pass: 3% above is not a failure", () => {
    expect(aboveEngineCeiling(557, [scenario({ "d-adaptive": 557 * 1.029 })])).toEqual([]);
    expect(engineCeilingCheck(557, [scenario({ "d-adaptive": 540 })])[0]?.met).toBe(true);
    // Without a saturated run or a ceiling there is nothing to check.
    expect(engineCeilingCheck(557, [scenario({ "d-adaptive": 900 }, "latency")])).toEqual([]);
    expect(engineCeilingCheck(Number.NaN, [scenario({ "d-adaptive": 900 })])).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import {
  ABSURD_RATIO,
  ARRIVAL_MIN_GAP_MS,
  ARRIVAL_RATE_TAU_MS,
  LATENCY_FACTOR_DECAY_MS,
  LATENCY_FACTOR_MAX,
  LATENCY_FACTOR_MIN,
  LATENCY_SAMPLE_WEIGHT,
  holdArrivalsPerMs,
  latencyFactorAt,
  updateArrivalRate,
  updateLatencyFactor,
  type ArrivalRate,
  type LatencyFactor,
} from "#shared/core/hold-measurements";
import { REPORT_FRESH_MS, type QueueBoard } from "#shared/core/queue-position";

const NOW = Date.parse("2026-12-07T12:00:00.000Z");

describe("latency factor", () => {
  const sample = (ratio: number, atMs = NOW) => ({ measuredMs: 3000 * ratio, predictedMs: 3000, atMs });

  it("is the model's (1) until a batch is measured", () => {
    expect(latencyFactorAt(undefined, NOW)).toBe(1);
  });

  it("moves toward each measured ratio by the sample's weight, in log space", () => {
    const first = updateLatencyFactor(undefined, sample(1.2));
    expect(first?.factor).toBeCloseTo(Math.exp(LATENCY_SAMPLE_WEIGHT * Math.log(1.2)), 9);
    expect(first?.atMs).toBe(NOW);
    let state: LatencyFactor | undefined;
    for (let i = 0; i < 40; i++) state = updateLatencyFactor(state, sample(1.2, NOW + i * 1000));
    expect(latencyFactorAt(state, NOW + 39_000)).toBeCloseTo(1.2, 2);
    // 2x slow and 2x fast weigh alike: one of each leaves the factor near 1.
    const both = updateLatencyFactor(updateLatencyFactor(undefined, sample(2)), sample(0.5));
    expect(both?.factor).toBeGreaterThan(0.9);
    expect(both?.factor).toBeLessThan(1);
  });

  it("ignores absurd samples: past the ratio either way, a zero or unknown prediction", () => {
    const state = { factor: 1.1, atMs: NOW };
    expect(updateLatencyFactor(state, sample(ABSURD_RATIO * 1.01))).toBe(state);
    expect(updateLatencyFactor(state, sample(1 / (ABSURD_RATIO * 1.01)))).toBe(state);
    expect(updateLatencyFactor(state, { measuredMs: 3000, predictedMs: 0, atMs: NOW })).toBe(state);
    expect(updateLatencyFactor(state, { measuredMs: Number.NaN, predictedMs: 3000, atMs: NOW })).toBe(state);
    expect(updateLatencyFactor(undefined, { measuredMs: 0, predictedMs: 3000, atMs: NOW })).toBeUndefined();
  });

  it("stays within its bounds however long the GPU runs slow or fast", () => {
    let slow: LatencyFactor | undefined;
    let fast: LatencyFactor | undefined;
    for (let i = 0; i < 50; i++) {
      slow = updateLatencyFactor(slow, sample(4.5, NOW + i));
      fast = updateLatencyFactor(fast, sample(0.25, NOW + i));
    }
    expect(slow?.factor).toBe(LATENCY_FACTOR_MAX);
    expect(fast?.factor).toBe(LATENCY_FACTOR_MIN);
    expect(latencyFactorAt({ factor: 7, atMs: NOW }, NOW)).toBe(LATENCY_FACTOR_MAX);
  });

  it("decays back to 1 without samples", () => {
    const state = { factor: 1.5, atMs: NOW };
    expect(latencyFactorAt(state, NOW)).toBeCloseTo(1.5, 9);
    expect(latencyFactorAt(state, NOW + LATENCY_FACTOR_DECAY_MS)).toBeCloseTo(Math.exp(Math.log(1.5) / Math.E), 9);
    expect(latencyFactorAt(state, NOW + 10 * LATENCY_FACTOR_DECAY_MS)).toBeCloseTo(1, 4);
    // A clock behind the last sample does not grow it.
    expect(latencyFactorAt(state, NOW - 60_000)).toBeCloseTo(1.5, 9);
    // A sample long after the last counts against the decayed factor.
    const later = updateLatencyFactor(state, sample(1, NOW + 10 * LATENCY_FACTOR_DECAY_MS));
    expect(later?.factor).toBeCloseTo(1, 3);
  });
});

describe("route arrival rate", () => {
  const board = (submitted: number, rate?: QueueBoard["rate"]): Pick<QueueBoard, "submitted" | "rate"> => ({ submitted: { interactive: 1, batch: submitted - 1 }, rate });

  it("starts from the rate the board's last closed window measured, while it is fresh", () => {
    const fresh = updateArrivalRate(undefined, board(100, { perSecond: 3, backlogged: false, atMs: NOW - 5_000, arrivalsPerSecond: 6.5 }), NOW);
    expect(fresh).toEqual({ perMs: 0.0065, atMs: NOW - 5_000, last: { atMs: NOW, submitted: 100 } });
    const stale = updateArrivalRate(undefined, board(100, { perSecond: 3, backlogged: false, atMs: NOW - REPORT_FRESH_MS - 1, arrivalsPerSecond: 6.5 }), NOW);
    expect(stale).toEqual({ perMs: undefined, atMs: NOW, last: { atMs: NOW, submitted: 100 } });
    const uncounted = updateArrivalRate(undefined, board(100, { perSecond: 3, backlogged: false, atMs: NOW }), NOW);
    expect(uncounted.perMs).toBeUndefined();
  });

  it("differences the route's tickets between reads, smoothed over ARRIVAL_RATE_TAU_MS", () => {
    const first = updateArrivalRate(undefined, board(100), NOW);
    const second = updateArrivalRate(first, board(120), NOW + 2_000);
    expect(second).toEqual({ perMs: 0.01, atMs: NOW + 2_000, last: { atMs: NOW + 2_000, submitted: 120 } });
    const third = updateArrivalRate(second, board(120), NOW + 4_000);
    expect(third.perMs).toBeCloseTo(0.01 * Math.exp(-2_000 / ARRIVAL_RATE_TAU_MS), 9);
  });

  it("waits for a gap of ARRIVAL_MIN_GAP_MS before it differences, and restarts on a counter that went back", () => {
    const first = updateArrivalRate(undefined, board(100), NOW);
    expect(updateArrivalRate(first, board(105), NOW + ARRIVAL_MIN_GAP_MS - 1)).toBe(first);
    const recreated = updateArrivalRate({ ...first, perMs: 0.02 }, board(3), NOW + 5_000);
    expect(recreated).toEqual({ perMs: undefined, atMs: NOW + 5_000, last: { atMs: NOW + 5_000, submitted: 3 } });
  });

  it("feeds the hold the route's rate while fresh, else what the batcher pulled itself", () => {
    const route: ArrivalRate = { perMs: 0.0065, atMs: NOW - 1_000, last: { atMs: NOW - 1_000, submitted: 100 } };
    expect(holdArrivalsPerMs({ nowMs: NOW, route, pulled: 4, sinceMs: NOW - 2_000 })).toBe(0.0065);
    expect(holdArrivalsPerMs({ nowMs: NOW + REPORT_FRESH_MS, route, pulled: 4, sinceMs: NOW - 2_000 })).toBeCloseTo(4 / (REPORT_FRESH_MS + 2_000), 12);
    expect(holdArrivalsPerMs({ nowMs: NOW, route: { ...route, perMs: undefined }, pulled: 4, sinceMs: NOW - 2_000 })).toBe(0.002);
    expect(holdArrivalsPerMs({ nowMs: NOW, route: undefined, pulled: 0, sinceMs: NOW })).toBe(0);
  });
});

import { describe, expect, it } from "vitest";
import { tokenCounter } from "#shared/core/tokens";
import { promptBook, WORDS } from "../../tools/bench/prompts.ts";
import { slots, scenarios } from "../../tools/bench/scenarios.ts";
import { generateTrace, offeredRpm, profileRpm, seededRandom, type TraceSpec } from "../../tools/bench/trace.ts";

const poisson = (seed: number, rpm = 400, durationMs = 60_000): TraceSpec => ({
  seed,
  durationMs,
  arrivals: { kind: "poisson", rpm },
  lengths: { kind: "fixed", promptTokens: 512, maxTokens: 512 },
});

describe("bench traces", () => {
  it("are the same for the same seed, and differ for another", () => {
    expect(generateTrace(poisson(7))).toEqual(generateTrace(poisson(7)));
    expect(generateTrace(poisson(8)).map((r) => r.atMs)).not.toEqual(generateTrace(poisson(7)).map((r) => r.atMs));
  });

  it("draws numbers in [0, 1) from a seed", () => {
    const random = seededRandom(42);
    const values = Array.from({ length: 10_000 }, random);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    expect(values.reduce((a, b) => a + b, 0) / values.length).toBeCloseTo(0.5, 1);
  });

  it("offers a Poisson load at its rate, in order, within the duration", () => {
    const trace = generateTrace(poisson(1, 600, 600_000));
    // 6,000 expected; a Poisson count's standard deviation is about 77.
    expect(trace.length).toBeGreaterThan(5_700);
    expect(trace.length).toBeLessThan(6_300);
    expect(trace.every((r, i) => r.index === i && r.atMs >= 0 && r.atMs < 600_000 && (i === 0 || r.atMs >= (trace[i - 1]?.atMs ?? 0)))).toBe(true);
    expect(trace.every((r) => r.promptTokens === 512 && r.maxTokens === 512)).toBe(true);
  });

  it("puts bursts where they belong and keeps their mean", () => {
    const arrivals = { kind: "bursty", baseRpm: 0, burstRpm: 1200, periodMs: 10_000, burstMs: 2_000 } as const;
    const trace = generateTrace({ ...poisson(3, 0, 600_000), arrivals });
    expect(trace.every((r) => r.atMs % 10_000 < 2_000)).toBe(true);
    expect(offeredRpm(arrivals, 600_000)).toBe(240);
    expect(trace.length / 10).toBeGreaterThan(220);
    expect(trace.length / 10).toBeLessThan(260);
  });

  it("follows a rate profile: none where it is zero, the peak where it peaks, its mean overall", () => {
    const arrivals = { kind: "profile", points: [[0, 0], [100_000, 0], [200_000, 600], [400_000, 600], [500_000, 0]] } as const;
    const trace = generateTrace({ ...poisson(4, 0, 600_000), arrivals });
    expect(trace.some((r) => r.atMs < 100_000 || r.atMs > 500_000)).toBe(false);
    const atPeak = trace.filter((r) => r.atMs >= 200_000 && r.atMs < 400_000).length;
    // 2,000 expected over the 200 s at 600 rpm; the standard deviation is about 45.
    expect(atPeak).toBeGreaterThan(1_850);
    expect(atPeak).toBeLessThan(2_150);
    expect(profileRpm(arrivals.points, 150_000)).toBe(300);
    // (0 + 0 + 300·100 + 600·200 + 300·100) s·rpm over 600 s.
    expect(offeredRpm(arrivals, 600_000)).toBeCloseTo(300, 0);
  });

  it("draws mixed lengths within their bounds, whatever the arrivals", () => {
    const lengths = { kind: "mixed", prompt: [32, 2048], maxTokens: [16, 1024] } as const;
    const trace = generateTrace({ ...poisson(5), lengths });
    expect(trace.every((r) => r.promptTokens >= 32 && r.promptTokens <= 2048 && r.maxTokens >= 16 && r.maxTokens <= 1024)).toBe(true);
    expect(new Set(trace.map((r) => r.promptTokens)).size).toBeGreaterThan(50);
    // The lengths come from their own stream: other arrivals, same lengths in order.
    const other = generateTrace({ ...poisson(5, 100), lengths });
    expect(other.map((r) => r.promptTokens)).toEqual(trace.slice(0, other.length).map((r) => r.promptTokens));
  });

  it("builds prompts of exactly the tokens asked for, with the route's counter", () => {
    const counter = tokenCounter("llama2");
    for (const word of WORDS) expect(counter.countPrompt(`x ${word}`) - counter.countPrompt("x")).toBe(1);
    const book = promptBook(counter);
    for (const tokens of [2, 17, 512, 1500]) {
      for (const variant of [0, 3]) expect(counter.countPrompt(book.prompt(tokens, variant))).toBe(tokens);
    }
    expect(book.prompt(512, 0)).not.toBe(book.prompt(512, 1));
    expect(book.prompt(512, 1)).toBe(book.prompt(512, 9));
  });
});

describe("bench scenarios", () => {
  const names = ["a-one-at-a-time", "b-esm-defaults", "c-fixed-window", "d-adaptive", "d-adaptive-static", "d-adaptive-static-model"];

  it("are the same scenarios in quick and full runs, the quick ones shorter", () => {
    const quick = scenarios("quick", 1);
    const full = scenarios("full", 1);
    expect(quick.map((s) => s.name)).toEqual(["ten-percent", "poisson-400", "mixed", "bursty", "saturated", "backlog"]);
    expect(full.map((s) => s.name)).toEqual(quick.map((s) => s.name));
    quick.forEach((s, i) => expect(s.trace.durationMs).toBeLessThan(full[i]?.trace.durationMs ?? 0));
  });

  it("give each policy the machine to itself in a full run, and say who shares it in a quick one", () => {
    const [light, at400, mixed] = scenarios("quick", 1);
    const [, full400] = scenarios("full", 1);
    expect(slots(full400!, "full", names)).toEqual(names.map((n) => [n]));
    expect(slots(light!, "quick", names)).toEqual([["a-one-at-a-time", "b-esm-defaults", "c-fixed-window", "d-adaptive-static", "d-adaptive-static-model"], ["d-adaptive"]]);
    expect(slots(at400!, "quick", names)).toEqual([["a-one-at-a-time", "d-adaptive-static", "d-adaptive-static-model"], ["b-esm-defaults"], ["c-fixed-window"], ["d-adaptive"]]);
    // The measured hold and the model-only one run side by side, under the same load.
    expect(slots(at400!, "quick", ["d-adaptive-static", "d-adaptive-static-model"])).toEqual([["d-adaptive-static", "d-adaptive-static-model"]]);
    expect(slots(mixed!, "quick", names).flat().toSorted()).toEqual([...names].sort());
    expect(slots(at400!, "quick", ["d-adaptive"])).toEqual([["d-adaptive"]]);
  });
});

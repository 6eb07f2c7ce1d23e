import { describe, expect, it } from "vitest";
import { copyWindowRates } from "#shared/aws/emulator-engine-metrics";

// A copy's GPU busy share and tokens/s over a wall-clock window, from its one-second buckets of
// simulated time (the emulator's clock runs timeScale times faster).
const copy = (readyAtMs: number, buckets: [startMs: number, busyMs: number, tokens: number][], state: "ready" | "warming" | "draining" = "ready") => ({
  copy: 0, state, readyAtMs, runningSequences: 0, kvCacheTokens: { now: 0 }, series: buckets.map(([startMs, busyMs, tokens]) => ({ startMs, busyMs, tokens })),
});

describe("a copy's rates over the window", () => {
  it("counts the buckets inside the window only, over the window's length", () => {
    // 10 s window at real time, now 100 s: buckets from 90 s count.
    const rates = copyWindowRates(copy(0, [[80_000, 1000, 500], [90_000, 500, 100], [95_000, 1000, 300]]), 100_000, 10_000, 1);
    expect(rates).toEqual({ gpuBusyFraction: 0.15, generatedTokensPerSecond: 40 });
  });

  it("counts a copy that became ready within the window from then", () => {
    expect(copyWindowRates(copy(98_000, [[98_000, 1000, 200], [99_000, 1000, 200]]), 100_000, 10_000, 1)).toEqual({ gpuBusyFraction: 1, generatedTokensPerSecond: 200 });
  });

  it("spans timeScale times more simulated time, and gives tokens per wall second", () => {
    // 1 s of wall window at 10x: the last 10 simulated seconds; 1000 tokens in them = 1000 a wall second.
    expect(copyWindowRates(copy(0, [[95_000, 5000, 1000]]), 100_000, 1000, 10)).toEqual({ gpuBusyFraction: 0.5, generatedTokensPerSecond: 1000 });
  });

  it("has no rates for a copy that is not serving", () => {
    expect(copyWindowRates(copy(200_000, [], "warming"), 100_000, 10_000, 1)).toBeUndefined();
    expect(copyWindowRates(copy(0, [[95_000, 1000, 10]], "draining"), 100_000, 10_000, 1)).toBeUndefined();
  });
});

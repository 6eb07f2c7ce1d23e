import { describe, expect, it } from "vitest";
import { staticBatchMs } from "#shared/core/latency-model";
import { correctedProfile, DRIFT_THRESHOLD, DRIFT_WINDOW, driftRatio, NO_DRIFT, noteDrift, type ProfileDrift } from "#shared/core/profile-drift";
import { seededRandom } from "#local/sagemaker/random";
import { h100Profile } from "../../helpers/h100.ts";

/** Log-normal noise of `sigma` around 1 (Box-Muller on a seeded PRNG). */
function noise(seed: string, sigma: number): () => number {
  const random = seededRandom(seed);
  return () => Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
}

/** The factor after each batch of a GPU that runs `pace(i)` times the profile, with noise. */
function run(batches: number, pace: (i: number) => number, jitter: () => number, from: ProfileDrift = NO_DRIFT): { factors: number[]; state: ProfileDrift } {
  let state = from;
  const factors: number[] = [];
  for (let i = 0; i < batches; i++) {
    state = noteDrift(state, { measuredMs: 4_000 * pace(i) * jitter(), predictedMs: 4_000 });
    factors.push(state.factor);
  }
  return { factors, state };
}

/** Most of the window must see a change before its median moves past the threshold: 9 of 16, and two more for noise. */
const TRIPS_WITHIN = DRIFT_WINDOW / 2 + 3;

describe("the profile drift estimator", () => {
  it("never corrects the profile for noise: 8% log-normal jitter and one batch in fifty three times slow, over 5,000 batches", () => {
    const jitter = noise("noise", 0.08);
    const outliers = seededRandom("outliers");

    const { factors, state } = run(5_000, () => (outliers() < 0.02 ? 3 : 1), jitter);

    expect(new Set(factors)).toEqual(new Set([1]));
    expect(driftRatio(state)).toBeGreaterThan(0.85);
    expect(driftRatio(state)).toBeLessThan(1.15);
  });

  it("follows a real 30% slowdown within 11 batches, holds it without flapping, and returns to the profile within 11 once it ends", () => {
    const jitter = noise("slowdown", 0.08);
    const before = run(200, () => 1, jitter);

    const slow = run(500, () => 1.3, jitter, before.state);
    const tripped = slow.factors.findIndex((f) => f !== 1);
    const after = run(200, () => 1, jitter, slow.state);
    const back = after.factors.findIndex((f) => f === 1);

    expect(tripped).toBeGreaterThanOrEqual(0);
    expect(tripped + 1).toBeLessThanOrEqual(TRIPS_WITHIN);
    expect(Math.abs((slow.factors[tripped] ?? 0) / 1.3 - 1)).toBeLessThan(0.1);
    // Tripped once, then held for the other ~490 batches.
    expect(new Set(slow.factors.slice(tripped)).size).toBe(1);
    expect(back + 1).toBeLessThanOrEqual(TRIPS_WITHIN);
    expect(new Set(after.factors.slice(back))).toEqual(new Set([1]));
  });

  it("leaves a change inside the threshold alone: a steady 10% slowdown is noise to plan on", () => {
    const { factors } = run(500, () => 1 + DRIFT_THRESHOLD * 0.66, noise("small", 0.05));
    expect(new Set(factors)).toEqual(new Set([1]));
  });

  it("drops absurd samples: a call queued behind a cold start says nothing of the GPU's pace", () => {
    const state = run(20, () => 1, () => 1).state;
    expect(noteDrift(state, { measuredMs: 60_000, predictedMs: 4_000 })).toBe(state);
    expect(noteDrift(state, { measuredMs: 1_000, predictedMs: 0 })).toBe(state);
  });

  it("corrects every time of the profile by the factor: a static batch's predicted time scales by it exactly", () => {
    const batch = Array.from({ length: 16 }, (_, i) => ({ promptTokens: 100 + 50 * i, newTokens: 64 + i }));
    const corrected = correctedProfile(h100Profile, 1.3);
    expect(staticBatchMs(corrected, batch)).toBeCloseTo(1.3 * staticBatchMs(h100Profile, batch), 6);
    expect(staticBatchMs(corrected, [{ promptTokens: 10, newTokens: 1 }])).toBeCloseTo(1.3 * h100Profile.prefillMinMs, 6);
    expect(correctedProfile(h100Profile, 1)).toBe(h100Profile);
  });
});

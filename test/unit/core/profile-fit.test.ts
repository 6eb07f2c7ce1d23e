import { describe, expect, it } from "vitest";
import { staticBatchMs } from "#shared/core/latency-model";
import { CalibrationFitError, calibrationPlan, DEFAULT_GRID, fitProfile, planEstimate, PREFILL_SENDS, type BurstMeasurement, type CalibrationBurst } from "#shared/core/profile-fit";
import { getProfile, type LatencyProfile } from "#shared/core/profiles";
import { seededRandom } from "#local/sagemaker/random";
import { routesCatalog } from "../../helpers/sagemaker.ts";

const llama3 = getProfile("llama3-8b-bf16-h100");
const routeLimits = routesCatalog().components.get("llama-3-8b-ic")?.limits;
if (!routeLimits) throw new Error("no llama-3-8b-ic in routes.yml");
// The route takes generations longer than one call; a calibration burst is one call, of at most 2,048 new tokens here.
const limits = { ...routeLimits, max_new_tokens: 2_048 };

/** Each burst timed as the model says plus a call's overhead, a start spread that grows with the batch, and jitter. */
function measure(bursts: readonly CalibrationBurst[], truth: LatencyProfile, options: { overheadMs: number; jitterMs: number; seed: string }): BurstMeasurement[] {
  const random = seededRandom(options.seed);
  return bursts.map((burst) => {
    const sequences = Array.from({ length: burst.batch }, () => ({ promptTokens: burst.promptTokens, newTokens: burst.newTokens }));
    const spreadMs = burst.batch * 0.4 * random();
    return { burst, sequences, ms: options.overheadMs + spreadMs + staticBatchMs(truth, sequences) + options.jitterMs * (random() - 0.5) * 2 };
  });
}

const off = (got: number, want: number) => Math.abs(got / want - 1);

describe("calibrationPlan", () => {
  it("sends the grid's batch sizes × prompts × outputs and single prompts of 1 new token, leaving out what the component would not admit at once", () => {
    const { bursts, left } = calibrationPlan({ batchSizes: [1, 64, 512], promptTokens: [128, 2048, 8192], newTokens: [32, 4096], repeats: 2 }, limits);

    expect(bursts.every((b) => b.batch <= limits.max_sequences && b.promptTokens <= limits.max_prompt_tokens && b.newTokens <= limits.max_new_tokens)).toBe(true);
    expect(bursts.every((b) => b.batch * (b.promptTokens + b.newTokens) <= limits.token_budget)).toBe(true);
    expect(bursts.filter((b) => b.newTokens === 1).every((b) => b.batch === 1)).toBe(true);
    expect(bursts.filter((b) => b.newTokens === 1 && b.promptTokens === 128 && b.repeat === 0)).toHaveLength(PREFILL_SENDS);
    expect(bursts.filter((b) => b.repeat === 1)).toHaveLength(bursts.length / 2);
    expect(left).toEqual(expect.arrayContaining(["batch 512: over max_sequences 256", "prompt 8192: over max_prompt_tokens 6144", "output 4096: over max_new_tokens 2048"]));
  });

  it("estimates the default plan's GPU time with the current profile: a few GPU-minutes on an H100", () => {
    const { bursts } = calibrationPlan(DEFAULT_GRID, limits);
    const { requests, gpuMs } = planEstimate(bursts, llama3);
    expect(requests).toBe(bursts.reduce((sum, b) => sum + b.batch, 0));
    expect(gpuMs).toBeCloseTo(bursts.reduce((sum, b) => sum + staticBatchMs(llama3, Array.from({ length: b.batch }, () => ({ promptTokens: b.promptTokens, newTokens: b.newTokens }))), 0), 6);
    expect(gpuMs / 60_000).toBeGreaterThan(0.5);
    expect(gpuMs / 60_000).toBeLessThan(10);
  });
});

describe("fitProfile", () => {
  it("recovers a profile from bursts timed with overhead, start spread and jitter: decode terms and prefill within 5%, the overhead reported apart", () => {
    const truth: LatencyProfile = { ...llama3, decodeBaseMs: 9.1, decodePerSequenceMs: 0.03, decodePerContextTokenMs: 0.00006, prefillMinMs: 18, prefillTokensPerMs: 30 };
    const { bursts } = calibrationPlan(DEFAULT_GRID, limits);

    const fit = fitProfile(measure(bursts, truth, { overheadMs: 25, jitterMs: 4, seed: "fit" }), llama3, "mine");

    expect(fit.latency.name).toBe("mine");
    expect(fit.latency.kvCapacityTokens).toBe(llama3.kvCapacityTokens);
    expect(off(fit.latency.decodeBaseMs, truth.decodeBaseMs)).toBeLessThan(0.05);
    expect(off(fit.latency.prefillTokensPerMs, truth.prefillTokensPerMs)).toBeLessThan(0.05);
    for (const [batch, context] of [[1, 200], [16, 1_000], [64, 2_300]] as const) {
      expect(off(fit.latency.decodePerSequenceMs * batch + fit.latency.decodePerContextTokenMs * batch * context + fit.latency.decodeBaseMs, truth.decodePerSequenceMs * batch + truth.decodePerContextTokenMs * batch * context + truth.decodeBaseMs)).toBeLessThan(0.05);
    }
    expect(Math.abs(fit.overheadMs - 25)).toBeLessThan(5);
    expect(fit.error.decode.points).toBeGreaterThan(0);
    expect(fit.error.decode.largest).toBeLessThan(0.05);
  });

  it("fits no negative term: a GPU whose step has no per-sequence cost gets c = 0", () => {
    const truth: LatencyProfile = { ...llama3, decodePerSequenceMs: 0 };
    const fit = fitProfile(measure(calibrationPlan(DEFAULT_GRID, limits).bursts, truth, { overheadMs: 10, jitterMs: 2, seed: "no-c" }), llama3, "no-c");
    expect(fit.latency.decodePerSequenceMs).toBeGreaterThanOrEqual(0);
    expect(fit.latency.decodePerContextTokenMs).toBeGreaterThan(0);
  });

  it("refuses bursts that do not determine the decode step: one output length", () => {
    const { bursts } = calibrationPlan({ ...DEFAULT_GRID, newTokens: [64] }, limits);
    expect(() => fitProfile(measure(bursts, llama3, { overheadMs: 0, jitterMs: 0, seed: "one" }), llama3, "x")).toThrow(CalibrationFitError);
  });
});

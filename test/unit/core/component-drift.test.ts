import { describe, expect, it } from "vitest";
import {
  LoadIntegral, meanLoad, MIN_DECODE_TOKENS, MIN_PREFILL_SAMPLE_MS, NO_COMPONENT_DRIFT, noteSample, rollingSamples, withSamples, type ComponentDrift, type RollingCall,
} from "#shared/core/component-drift";
import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import { correctedProfile, DRIFT_MIN_SAMPLES, DRIFT_WINDOW } from "#shared/core/profile-drift";
import { seededRandom } from "#local/sagemaker/random";
import { h100Profile as profile } from "../../helpers/h100.ts";

/** Log-normal noise of `sigma` around 1 (Box-Muller on a seeded PRNG). */
function noise(seed: string, sigma: number): () => number {
  const random = seededRandom(seed);
  return () => Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
}

const perCopy = { sequences: 40, contextTokens: 40 * 900 };
const stepMs = decodeStepMs(profile, perCopy.sequences, perCopy.contextTokens);
const unity = { decode: 1, prefill: 1 };

/** A call of `generated` tokens on a copy whose decode steps and prefill run `decodePace` and `prefillPace` times the profile. */
function callAt(decodePace: number, prefillPace: number, options: { generated?: number; promptTokens?: number; streamed?: boolean } = {}): RollingCall {
  const { generated = 400, promptTokens = 600, streamed = false } = options;
  const firstTokenMs = 1_000 + prefillPace * prefillMs(profile, promptTokens) + decodePace * stepMs;
  const lastTokenMs = firstTokenMs + decodePace * (generated - 1) * stepMs;
  const endMs = lastTokenMs + 2;
  return { promptTokens, generatedTokens: generated, startMs: 1_000, endMs, perCopy, ...(streamed && { firstTokenMs, lastTokenMs }) };
}

function run(calls: number, call: (i: number) => RollingCall, from: ComponentDrift = NO_COMPONENT_DRIFT): ComponentDrift {
  let state = from;
  for (let i = 0; i < calls; i++) {
    for (const sample of rollingSamples(profile, call(i), { decode: state.decode.factor, prefill: state.prefill.factor })) state = noteSample(state, sample);
  }
  return state;
}

describe("rollingSamples: a continuous-batching call against the latency model at the copy's load", () => {
  it("times a whole call's decode steps as its time less its prefill, against its steps at the copy's mean load", () => {
    // Act
    const [sample, ...rest] = rollingSamples(profile, callAt(1.5, 1), unity);

    // Assess
    expect(rest).toEqual([]);
    expect(sample?.part).toBe("decode");
    expect(sample?.predictedMs).toBeCloseTo(399 * stepMs, 6);
    expect((sample?.measuredMs ?? 0) / (sample?.predictedMs ?? 1)).toBeCloseTo(1.5, 1);
  });

  it("times a streamed call's decode from its first text to its last, and its prefill from the start to the first text when long enough to tell", () => {
    // Act
    const long = rollingSamples(profile, callAt(1, 2, { streamed: true, promptTokens: 6_000 }), unity);
    const short = rollingSamples(profile, callAt(1, 2, { streamed: true, promptTokens: 200 }), unity);

    // Assess
    const prefill = long.find((s) => s.part === "prefill");
    const decode = long.find((s) => s.part === "decode");
    expect(prefillMs(profile, 6_000)).toBeGreaterThan(MIN_PREFILL_SAMPLE_MS);
    expect((prefill?.measuredMs ?? 0) / (prefill?.predictedMs ?? 1)).toBeGreaterThan(1.8);
    expect((decode?.measuredMs ?? 0) / (decode?.predictedMs ?? 1)).toBeCloseTo(1, 6);
    // 200 prompt tokens prefill in 13 ms: SageMaker's own overhead would read as a slow prefill.
    expect(short.map((s) => s.part)).toEqual(["decode"]);
  });

  it("takes no decode sample from a call of fewer than MIN_DECODE_TOKENS tokens", () => {
    expect(rollingSamples(profile, callAt(3, 1, { generated: MIN_DECODE_TOKENS - 1 }), unity)).toEqual([]);
  });

  it("subtracts the prefill as its factor in force predicts it, so that a slow prefill is not read as a slow decode", () => {
    // Prepare: a long prompt prefilled at twice the profile's time, decode as the profile says.
    const call = callAt(1, 2, { promptTokens: 20_000, generated: 40 });

    // Act
    const [asProfile] = rollingSamples(profile, call, unity);
    const [corrected] = rollingSamples(profile, call, { decode: 1, prefill: 2 });

    // Assess
    expect((asProfile?.measuredMs ?? 0) / (asProfile?.predictedMs ?? 1)).toBeGreaterThan(1.5);
    expect((corrected?.measuredMs ?? 0) / (corrected?.predictedMs ?? 1)).toBeCloseTo(1, 1);
  });
});

describe("a component's drift over rolling calls", () => {
  it("never corrects the profile for noise: 10% log-normal jitter and one call in thirty three times slow, over 3,000 calls", () => {
    // Prepare
    const jitter = noise("rolling-noise", 0.1);
    const outliers = seededRandom("rolling-outliers");
    const factors = new Set<number>();

    // Act
    let state = NO_COMPONENT_DRIFT;
    for (let i = 0; i < 3_000; i++) {
      const pace = jitter() * (outliers() < 1 / 30 ? 3 : 1);
      for (const sample of rollingSamples(profile, callAt(pace, pace, { streamed: true, promptTokens: 8_000 }), unity)) state = noteSample(state, sample);
      factors.add(state.decode.factor).add(state.prefill.factor);
    }

    // Assess
    expect([...factors]).toEqual([1]);
  });

  it("corrects the decode step alone once most of the window saw a GPU 60% slower on decode, and plans with the corrected step", () => {
    // Act
    const early = run(DRIFT_MIN_SAMPLES - 1, () => callAt(1.6, 1, { streamed: true, promptTokens: 8_000 }));
    const state = run(DRIFT_WINDOW, () => callAt(1.6, 1, { streamed: true, promptTokens: 8_000 }));

    // Assess
    expect(early.decode.factor).toBe(1);
    expect(state.decode.factor).toBeCloseTo(1.6, 1);
    expect(state.prefill.factor).toBe(1);
    const corrected = correctedProfile(profile, { decode: state.decode.factor, prefill: state.prefill.factor });
    expect(decodeStepMs(corrected, 40, 36_000)).toBeCloseTo(1.6 * decodeStepMs(profile, 40, 36_000), 1);
    expect(prefillMs(corrected, 8_000)).toBeCloseTo(prefillMs(profile, 8_000), 6);
  });

  it("moves the decode and prefill alike on a static batch's one time", () => {
    // Act
    let state = NO_COMPONENT_DRIFT;
    for (let i = 0; i < DRIFT_MIN_SAMPLES; i++) state = noteSample(state, { part: "both", measuredMs: 1_300, predictedMs: 1_000 });

    // Assess
    expect(state.decode.factor).toBeCloseTo(1.3, 6);
    expect(state.prefill.factor).toBeCloseTo(1.3, 6);
  });

  it("lays a batcher's unstored samples on a newer state another batcher stored, in order", () => {
    // Prepare
    const stored = run(DRIFT_WINDOW, () => callAt(2, 1));
    const mine = rollingSamples(profile, callAt(2, 1), unity);

    // Act
    const merged = withSamples(stored, mine);

    // Assess
    expect(merged.decode.logRatios).toEqual([...stored.decode.logRatios, ...mine.map((s) => Math.log(s.measuredMs / s.predictedMs))].slice(-DRIFT_WINDOW));
    expect(merged.decode.factor).toBeCloseTo(2, 1);
  });
});

describe("LoadIntegral and meanLoad", () => {
  it("gives a call the load the copies held on average while it ran, and the load at its start when no time passed", () => {
    // Prepare
    const integral = new LoadIntegral();
    integral.set(0, 10, 1_000);
    const start = integral.mark(100);

    // Act
    const instant = meanLoad(start, integral.mark(100), { sequences: 10, tokens: 1_000 });
    integral.set(200, 30, 3_000);
    const mean = meanLoad(start, integral.mark(300), { sequences: 10, tokens: 1_000 });

    // Assess: 100 ms at 10 then 100 ms at 30.
    expect(mean).toEqual({ sequences: 20, tokens: 2_000 });
    expect(instant).toEqual({ sequences: 10, tokens: 1_000 });
  });
});

import { decodeStepMs, prefillMs } from "./latency-model.ts";
import { NO_DRIFT, noteDrift, type DriftFactors, type DriftSample, type ProfileDrift } from "./profile-drift.ts";
import type { LatencyProfile } from "./profiles.ts";

/**
 * A component's drift from its latency profile, for every engine (docs/metrics.md, "Profile
 * drift"). The decode step and the prefill drift apart (a GPU throttled on clocks slows both; a
 * copy short of memory bandwidth slows decode only), so each has its own estimator
 * (profile-drift.ts: the median of the last batches' or calls' ratios, a dead band, a minimum of
 * samples); a static batch's one time moves both alike. The state is stored beside the capacity
 * ledger's holders (one item per component), so that a batcher invocation starts from the pace
 * the ones before it measured rather than from the profile.
 */
export type ComponentDrift = {
  readonly decode: ProfileDrift;
  readonly prefill: ProfileDrift;
  /** When a batcher last stored it (ms): a batcher adopts a stored state newer than the one it read. */
  readonly atMs: number;
};

export const NO_COMPONENT_DRIFT: ComponentDrift = { decode: NO_DRIFT, prefill: NO_DRIFT, atMs: 0 };

export type DriftPart = "decode" | "prefill";

/** One measured time against its prediction, and what it measured: the decode step, the prefill, or both (a static batch). */
export type PartSample = DriftSample & { readonly part: DriftPart | "both" };

export function factorsOf(state: ComponentDrift): DriftFactors {
  return { decode: state.decode.factor, prefill: state.prefill.factor };
}

export function noteSample(state: ComponentDrift, sample: PartSample): ComponentDrift {
  const decode = sample.part === "prefill" ? state.decode : noteDrift(state.decode, sample);
  const prefill = sample.part === "decode" ? state.prefill : noteDrift(state.prefill, sample);
  return decode === state.decode && prefill === state.prefill ? state : { ...state, decode, prefill };
}

/** A stored state with this batcher's samples since it last stored one laid on top, in the order they came. */
export function withSamples(state: ComponentDrift, samples: readonly PartSample[]): ComponentDrift {
  return samples.reduce(noteSample, state);
}

/**
 * Fewer generated tokens than this and a call says little of the decode step: the fixed costs of
 * a call (SageMaker's routing, the HTTP round trip, tens of ms) would read as a slow step.
 */
export const MIN_DECODE_TOKENS = 16;
/**
 * A prefill predicted shorter than this is not sampled: the time to the first token also holds
 * SageMaker's routing and the engine's wait for the iteration under way, which would read as a
 * slow prefill on a short prompt. About 4 400 prompt tokens on the Llama-2-7B H100 profile.
 */
export const MIN_PREFILL_SAMPLE_MS = 100;

/** What one call of a continuous-batching engine measured, on the batcher's clock. */
export type RollingCall = {
  readonly promptTokens: number;
  readonly generatedTokens: number;
  readonly startMs: number;
  readonly endMs: number;
  /** When its first and last text arrived, for a streamed call. */
  readonly firstTokenMs?: number | undefined;
  readonly lastTokenMs?: number | undefined;
  /**
   * What a copy held on average while the call ran (every batcher's sequences over the copies, as
   * the capacity ledger said), and the context those sequences read each step.
   */
  readonly perCopy: { readonly sequences: number; readonly contextTokens: number };
};

/**
 * A rolling call's samples. Its sequence decodes beside the copy's others, so a step costs what
 * the latency model gives for the copy's mean load while it ran, and the call's decode took
 * (generated - 1) steps after the prefill that gave the first token:
 * - streamed: from its first text to its last against those steps; the time to the first text
 *   against the prefill plus the step under way when it came (when the prefill is long enough to
 *   tell, MIN_PREFILL_SAMPLE_MS);
 * - whole: the call's time less its prefill (as the prefill's factor in force predicts it) against
 *   the steps, so that a slow prefill is not read as a slow decode.
 */
export function rollingSamples(profile: LatencyProfile, call: RollingCall, factors: DriftFactors): readonly PartSample[] {
  const stepMs = decodeStepMs(profile, Math.max(1, call.perCopy.sequences), call.perCopy.contextTokens);
  const prefillPredictedMs = prefillMs(profile, call.promptTokens);
  const samples: PartSample[] = [];
  const steps = call.generatedTokens - 1;
  const streamed = call.firstTokenMs !== undefined && call.lastTokenMs !== undefined;
  if (streamed && prefillPredictedMs >= MIN_PREFILL_SAMPLE_MS) {
    samples.push({ part: "prefill", measuredMs: (call.firstTokenMs ?? 0) - call.startMs, predictedMs: prefillPredictedMs + stepMs });
  }
  if (call.generatedTokens < MIN_DECODE_TOKENS) return samples;
  const decodeMs = streamed ? (call.lastTokenMs ?? 0) - (call.firstTokenMs ?? 0) : call.endMs - call.startMs - prefillPredictedMs * factors.prefill;
  samples.push({ part: "decode", measuredMs: decodeMs, predictedMs: steps * stepMs });
  return samples;
}

/**
 * Mean load over time from its changes, per component: a call's mean load over its life is the
 * integral's growth from its start to its end over its length. O(1) a change and a call.
 */
export class LoadIntegral {
  #atMs: number | undefined;
  #sequences = 0;
  #tokens = 0;
  #sequenceMs = 0;
  #tokenMs = 0;

  /** The load from `atMs` on. */
  set(atMs: number, sequences: number, tokens: number): void {
    this.#advance(atMs);
    this.#sequences = sequences;
    this.#tokens = tokens;
  }

  /** The integrals up to `atMs`. */
  mark(atMs: number): { readonly atMs: number; readonly sequenceMs: number; readonly tokenMs: number } {
    this.#advance(atMs);
    return { atMs, sequenceMs: this.#sequenceMs, tokenMs: this.#tokenMs };
  }

  #advance(atMs: number): void {
    const elapsed = this.#atMs === undefined ? 0 : Math.max(0, atMs - this.#atMs);
    this.#sequenceMs += this.#sequences * elapsed;
    this.#tokenMs += this.#tokens * elapsed;
    this.#atMs = Math.max(atMs, this.#atMs ?? atMs);
  }
}

/** The mean load between two marks of one integral; the load at the start where no time passed. */
export function meanLoad(from: ReturnType<LoadIntegral["mark"]>, to: ReturnType<LoadIntegral["mark"]>, atStart: { readonly sequences: number; readonly tokens: number }): { readonly sequences: number; readonly tokens: number } {
  const lengthMs = to.atMs - from.atMs;
  if (lengthMs <= 0) return atStart;
  return { sequences: (to.sequenceMs - from.sequenceMs) / lengthMs, tokens: (to.tokenMs - from.tokenMs) / lengthMs };
}

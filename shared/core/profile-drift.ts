import { ABSURD_RATIO } from "./hold-measurements.ts";
import type { LatencyProfile } from "./profiles.ts";

/**
 * Whether a component's GPU still runs at its profile's pace, and the profile to plan with when it
 * does not. Each GPU batch gives one sample, its measured time over the time the profile predicts
 * for what it ran (its prompts and the tokens it generated). The drift is the median of the last
 * DRIFT_WINDOW ratios: a median, so that one batch queued behind a cold start or met a GC pause
 * moves nothing. The correction is one factor on every time of the profile, changed only with
 * hysteresis: once the window's median is more than DRIFT_THRESHOLD away from the factor in force,
 * after at least DRIFT_MIN_SAMPLES batches, the factor jumps to the median of the latest
 * DRIFT_MIN_SAMPLES batches (where the pace is now), or back to 1 when that is within the
 * threshold of the profile. Noise that leaves the median inside the band flips nothing; a real
 * change of pace moves the median past it once more than half the window saw it.
 *
 * A shape change (decode slower, prefill not) is corrected on average only: `batchline calibrate`
 * refits the shape.
 */

/**
 * Batches the median is taken over: with 8% noise a batch and one in fifty 3× slow, the median of
 * 16 passes 15% about once in a million batches (8 of 16 samples past 1.75σ); a real change
 * moves it after 9 or so.
 */
export const DRIFT_WINDOW = 16;
/** Batches before any correction (a median of fewer says little), and the latest batches a new factor is the median of. */
export const DRIFT_MIN_SAMPLES = 8;
/** How far (as a ratio) the median must be from the factor in force to change it: 15%. */
export const DRIFT_THRESHOLD = 0.15;

export type ProfileDrift = {
  /** Log of measured over predicted time of the last batches, oldest first, at most DRIFT_WINDOW. */
  readonly logRatios: readonly number[];
  /** What every time of the profile is multiplied by for planning; 1 until the drift passes the threshold. */
  readonly factor: number;
};

export const NO_DRIFT: ProfileDrift = { logRatios: [], factor: 1 };

export type DriftSample = { readonly measuredMs: number; readonly predictedMs: number };

/** The median measured/predicted ratio of the window; undefined before any sample. */
export function driftRatio(state: ProfileDrift): number | undefined {
  return state.logRatios.length === 0 ? undefined : Math.exp(median(state.logRatios));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** The state after one more GPU batch. A sample past ABSURD_RATIO either way is not the GPU's pace and is dropped. */
export function noteDrift(state: ProfileDrift, sample: DriftSample): ProfileDrift {
  const ratio = sample.measuredMs / sample.predictedMs;
  if (!(sample.predictedMs > 0) || !Number.isFinite(ratio) || ratio > ABSURD_RATIO || ratio < 1 / ABSURD_RATIO) return state;
  const logRatios = [...state.logRatios, Math.log(ratio)].slice(-DRIFT_WINDOW);
  const band = Math.log(1 + DRIFT_THRESHOLD);
  const kept = { logRatios, factor: state.factor };
  if (logRatios.length < DRIFT_MIN_SAMPLES || Math.abs(median(logRatios) - Math.log(state.factor)) <= band) return kept;
  // The window's median trips once most of it saw the change; the latest samples say where the pace is now.
  const recent = median(logRatios.slice(-DRIFT_MIN_SAMPLES));
  if (Math.abs(recent - Math.log(state.factor)) <= band / 2) return kept;
  // A pace within the threshold of the profile is the profile's: no factor ever sits in the noise band.
  return { logRatios, factor: Math.abs(recent) <= band ? 1 : Math.exp(recent) };
}

/** What the profile's decode-step times and its prefill times are each multiplied by for planning. */
export type DriftFactors = { readonly decode: number; readonly prefill: number };

/**
 * The profile with its times multiplied: a number scales every time (a static batch's one factor),
 * DriftFactors the decode step's terms and the prefill's apart (prefill throughput divided).
 */
export function correctedProfile(profile: LatencyProfile, factor: number | DriftFactors): LatencyProfile {
  const { decode, prefill } = typeof factor === "number" ? { decode: factor, prefill: factor } : factor;
  if (decode === 1 && prefill === 1) return profile;
  return {
    ...profile,
    decodeBaseMs: profile.decodeBaseMs * decode,
    decodePerSequenceMs: profile.decodePerSequenceMs * decode,
    decodePerContextTokenMs: profile.decodePerContextTokenMs * decode,
    prefillMinMs: profile.prefillMinMs * prefill,
    prefillTokensPerMs: profile.prefillTokensPerMs / prefill,
  };
}

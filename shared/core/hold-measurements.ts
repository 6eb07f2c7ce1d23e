import { REPORT_FRESH_MS, type QueueBoard } from "./queue-position.ts";

/**
 * What the static-batch hold (decideStaticBatch) measures rather than assumes: how the GPU's
 * static batches run against the latency model, and how fast jobs arrive on the whole route.
 * Both ride on the route's queue board, so a fresh batcher invocation starts from the route's
 * figures rather than from nothing, and every batcher pulling from the route counts the same
 * arrivals, not only those its own receives happened to take.
 */

/** Measured over predicted time of the route's static batches, smoothed; `atMs`: its last sample. */
export type LatencyFactor = { readonly factor: number; readonly atMs: number };

/**
 * The factor stays within these: the model is calibrated on the GPU (docs/calibration.md), so a
 * persistent error past 2× either way is a fault to look at, not a pace to plan holds on.
 */
export const LATENCY_FACTOR_MIN = 0.5;
export const LATENCY_FACTOR_MAX = 2;
/**
 * A sample past this ratio either way is not the GPU's pace: a call queued behind a cold start,
 * throttled and retried by the SDK, or a clock step. It is dropped, not clamped.
 */
export const ABSURD_RATIO = 5;
/** Weight of a new sample: about the last five batches count. */
export const LATENCY_SAMPLE_WEIGHT = 0.3;
/**
 * Without samples the factor returns to 1 (the model) with this time constant: a factor measured
 * under a load long gone must not shape the next hour's holds.
 */
export const LATENCY_FACTOR_DECAY_MS = 10 * 60_000;

/** One static batch as it ran: its time from the call to the copy's answer, and the model's prediction for it. */
export type LatencySample = { readonly measuredMs: number; readonly predictedMs: number; readonly atMs: number };

/** The factor at `nowMs`: the last one, decayed toward 1 by the time since its last sample. */
export function latencyFactorAt(state: LatencyFactor | undefined, nowMs: number): number {
  if (!state) return 1;
  const kept = Math.exp(-Math.max(0, nowMs - state.atMs) / LATENCY_FACTOR_DECAY_MS);
  return clampFactor(Math.exp(Math.log(state.factor) * kept));
}

/**
 * The factor after one more batch: an exponentially weighted mean of the ratios, in log space so
 * that 2× slow and 2× fast weigh alike. An absurd sample leaves the factor as it was.
 */
export function updateLatencyFactor(state: LatencyFactor | undefined, sample: LatencySample): LatencyFactor | undefined {
  const ratio = sample.measuredMs / sample.predictedMs;
  if (!(sample.predictedMs > 0) || !Number.isFinite(ratio) || ratio > ABSURD_RATIO || ratio < 1 / ABSURD_RATIO) return state;
  const before = Math.log(latencyFactorAt(state, sample.atMs));
  const after = before + LATENCY_SAMPLE_WEIGHT * (Math.log(ratio) - before);
  return { factor: clampFactor(Math.exp(after)), atMs: Math.max(sample.atMs, state?.atMs ?? sample.atMs) };
}

const clampFactor = (factor: number) => Math.min(LATENCY_FACTOR_MAX, Math.max(LATENCY_FACTOR_MIN, factor));

/** Jobs a ms arriving on the route (tickets taken at submit, both lanes), smoothed; `last`: the count it was updated with. */
export type ArrivalRate = { readonly perMs: number | undefined; readonly atMs: number; readonly last: { readonly atMs: number; readonly submitted: number } };

/**
 * Time constant of the smoothing: a 10 s mean, the start-rate window's span. A static batch of
 * 512 + 512 runs ~3 s and a hold lasts at most max_wait_ms, so the rate a hold counts on must
 * follow a burst within a few batches without swinging on each Poisson gap.
 */
export const ARRIVAL_RATE_TAU_MS = 10_000;
/** Counts closer together than this are not differenced (a 2 s report apart at most, usually). */
export const ARRIVAL_MIN_GAP_MS = 1_000;

const submittedOf = (board: Pick<QueueBoard, "submitted">) => board.submitted.interactive + board.submitted.batch;

/**
 * The route's arrival rate after a read of its board at `nowMs`. The first read starts from the
 * rate the board's last closed window measured (over every batcher's reports), if fresh; each
 * later read, at least ARRIVAL_MIN_GAP_MS on, adds the tickets taken since the last one.
 */
export function updateArrivalRate(state: ArrivalRate | undefined, board: Pick<QueueBoard, "submitted" | "rate">, nowMs: number): ArrivalRate {
  const count = { atMs: nowMs, submitted: submittedOf(board) };
  if (!state || count.submitted < state.last.submitted) {
    // A counter that went back is a board recreated: its history says nothing of this one.
    const closed = board.rate?.arrivalsPerSecond;
    const fresh = closed !== undefined && board.rate !== undefined && nowMs - board.rate.atMs <= REPORT_FRESH_MS;
    return { perMs: fresh ? closed / 1000 : undefined, atMs: fresh && board.rate ? board.rate.atMs : nowMs, last: count };
  }
  const gapMs = count.atMs - state.last.atMs;
  if (gapMs < ARRIVAL_MIN_GAP_MS) return state;
  const sampled = (count.submitted - state.last.submitted) / gapMs;
  const weight = 1 - Math.exp(-gapMs / ARRIVAL_RATE_TAU_MS);
  const perMs = state.perMs === undefined ? sampled : state.perMs + weight * (sampled - state.perMs);
  return { perMs, atMs: nowMs, last: count };
}

/**
 * Jobs a ms the hold counts on: the route's measured rate while it is fresh (a read within
 * REPORT_FRESH_MS: the route's batchers report while jobs leave the line), else what this batcher
 * pulled itself since it started, as before the board carried a rate.
 */
export function holdArrivalsPerMs(input: { readonly nowMs: number; readonly route: ArrivalRate | undefined; readonly pulled: number; readonly sinceMs: number }): number {
  const { route } = input;
  if (route?.perMs !== undefined && input.nowMs - route.atMs <= REPORT_FRESH_MS) return route.perMs;
  return input.pulled / Math.max(1, input.nowMs - input.sinceMs);
}

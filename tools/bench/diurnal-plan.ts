import type { Mode } from "./scenarios.ts";
import type { TraceSpec } from "./trace.ts";

/**
 * The diurnal scenario: a seeded day compressed `compression` times, run on a route whose copies
 * autoscale (0 to 2) and on the same route with a fixed fleet sized for the peak (2 copies).
 * Every delay of the AWS side is compressed by the same factor (copy warm-up, CloudWatch periods,
 * alarm evaluation, cooldowns, the idle time before scale-in to zero, the batcher's warming
 * recheck); the GPU is not (a request takes as long as on the H100), so the load is real
 * requests per minute at each hour of the compressed day.
 */

/** The AWS side's delays, real seconds, as deployed. */
export const REAL_DELAYS = {
  warmup_seconds: 300,
  scale_out_cooldown_seconds: 60,
  scale_in_cooldown_seconds: 300,
  warming_recheck_seconds: 30,
} as const;

/** [hour of the day, share of the peak rate]; linear in between. */
export const DAY_SHAPE: readonly (readonly [number, number])[] = [
  [0, 0], // idle: the fleet starts the day at zero copies
  [1, 0],
  [1, 0.05], // quiet night: the first request wakes the component from zero
  [6, 0.05],
  [9, 1], // morning ramp
  [13, 1], // peak, above one copy's capacity
  [14, 0.5],
  [18, 0.5], // afternoon
  [21, 0.05], // evening fall
  [21, 0], // idle stretch: scale in to zero
  [24, 0],
];

export type DiurnalPlan = {
  readonly mode: Mode;
  readonly compression: number;
  /** The compressed day, wall ms. */
  readonly dayMs: number;
  readonly peakRpm: number;
  readonly trace: TraceSpec;
  /** How long after the day the bench waits for the last answers. */
  readonly drainMs: number;
  readonly fixedCopies: number;
  readonly autoscaling: {
    readonly min_copies: number;
    readonly max_copies: number;
    readonly target_concurrent_requests_per_copy: number;
    readonly scale_out_cooldown_seconds: number;
    readonly scale_in_cooldown_seconds: number;
  };
  /** The largest p95 (ms) either fleet may have: the route's latency objective. */
  readonly latencyObjectiveMs: number;
};

const HOUR_MS = 3_600_000;

/**
 * The day of a run: 24 h in 6 minutes (quick, ×240) or 12 minutes (full, ×120). The peak is
 * 1.25 times what one 7B copy answers at 512 + 512 tokens (about 555 requests a minute).
 */
export function diurnalPlan(mode: Mode, seed: number): DiurnalPlan {
  const compression = mode === "quick" ? 240 : 120;
  const dayMs = (24 * HOUR_MS) / compression;
  const peakRpm = 690;
  return {
    mode,
    compression,
    dayMs,
    peakRpm,
    trace: {
      seed: seed + 11,
      durationMs: dayMs,
      arrivals: { kind: "profile", points: DAY_SHAPE.map(([hour, share]) => [(hour * HOUR_MS) / compression, share * peakRpm] as const) },
      lengths: { kind: "fixed", promptTokens: 512, maxTokens: 512 },
    },
    drainMs: 60_000,
    fixedCopies: 2,
    autoscaling: {
      min_copies: 0,
      max_copies: 2,
      target_concurrent_requests_per_copy: 64,
      scale_out_cooldown_seconds: REAL_DELAYS.scale_out_cooldown_seconds,
      scale_in_cooldown_seconds: REAL_DELAYS.scale_in_cooldown_seconds,
    },
    latencyObjectiveMs: 30_000,
  };
}

/** A real delay in the compressed day, wall seconds. */
export const compressed = (plan: Pick<DiurnalPlan, "compression">, realSeconds: number): number => realSeconds / plan.compression;

/** The hour of the day a wall time of the compressed day stands for. */
export const hourOf = (plan: Pick<DiurnalPlan, "compression">, atMs: number): number => (atMs * plan.compression) / HOUR_MS;

import { z } from "zod";
import { ValidationError } from "./errors.ts";
import { maxSlowdownPercent } from "./batch-lane-cap.ts";
import type { Route } from "./routes.ts";
import { DEFAULT_MAX_WARMING_WAIT_SECONDS } from "./warming-bound.ts";
import { toValidationError } from "./submission.ts";

/**
 * The batcher's own knobs for one route, live: stored in DynamoDB and read by batchers through a
 * short cache, so ops change them without a redeploy. (The event source mapping's batch size,
 * window and concurrency live in routes.yml; in AWS they change with UpdateEventSourceMapping.)
 *
 * - dispatch "adaptive": send work as soon as a copy has room, hold a static GPU batch only
 *   while a fuller batch pays for itself (the latency model says), never past the objective;
 *   "immediate": run what the event source mapping delivered, at once.
 * - top_up: pull more messages from the route's queue while the copies have room.
 * - max_in_flight_per_copy: sequences one copy may hold; beyond it messages wait in SQS.
 * - max_wait_ms: the longest a job may be held for a fuller batch.
 * - latency_objective_ms: end-to-end latency a job should not exceed by being held.
 * - warming_recheck_seconds: how long a job waits in SQS while its component starts a copy
 *   (scale from zero takes minutes) before a batcher looks again.
 * - max_warming_wait_seconds: the longest a job waits for its component to become ready, from
 *   its first wait (warming-bound.ts); past it the job ends FAILED (component_not_ready).
 * - batch_lane_floor_percent: while the batch lane has messages, at least this share of what a
 *   batcher takes from the queues comes from it, however busy the interactive lane is.
 * - interactive_slowdown_percent: while interactive work is around (held by any batcher, and for
 *   INTERACTIVE_MEMORY_MS after), batch-lane jobs start only while the batch lane's load on a copy
 *   lengthens its decode step by at most this share of the step's fixed part (the latency
 *   model's decodeBaseMs): how much slower an interactive job decodes beside a batch file than
 *   alone. Lower: faster interactive jobs, a slower batch (batch-lane-cap.ts).
 * - measured_hold: the static-batch hold counts on the route's measured arrival rate and scales
 *   the latency model by the measured time of the route's static batches (hold-measurements.ts);
 *   false: the latency model as calibrated and the jobs this batcher pulled itself, as before.
 */
export const routeSettingsSchema = z.strictObject({
  dispatch: z.enum(["adaptive", "immediate"], { error: 'must be "adaptive" or "immediate"' }),
  top_up: z.boolean({ error: "must be true or false" }),
  max_in_flight_per_copy: z.number({ error: "must be an integer" }).int("must be an integer").positive("must be at least 1"),
  max_wait_ms: z.number({ error: "must be an integer" }).int("must be an integer").min(0, "must be at least 0").max(60_000, "must be at most 60000"),
  latency_objective_ms: z.number({ error: "must be an integer" }).int("must be an integer").positive("must be at least 1").max(3_600_000, "must be at most 3600000"),
  // SQS delays are whole seconds, at most 15 minutes.
  warming_recheck_seconds: z.number({ error: "must be an integer" }).int("must be an integer").min(1, "must be at least 1").max(900, "must be at most 900"),
  // A day: past it a component is not warming but broken, and SQS keeps a message 4 days by default.
  max_warming_wait_seconds: z.number({ error: "must be an integer" }).int("must be an integer").min(1, "must be at least 1").max(86_400, "must be at most 86400"),
  // 0 would let a busy interactive lane starve the batch lane; past 50 the batch lane would come first.
  batch_lane_floor_percent: z.number({ error: "must be an integer" }).int("must be an integer").min(1, "must be at least 1").max(50, "must be at most 50"),
  // The route's own ceiling (checkRouteSettings) is lower: the batch lane must leave a copy room for an interactive job.
  interactive_slowdown_percent: z.number({ error: "must be an integer" }).int("must be an integer").min(1, "must be at least 1").max(1000, "must be at most 1000"),
  measured_hold: z.boolean({ error: "must be true or false" }),
});

export type RouteSettings = z.infer<typeof routeSettingsSchema>;

/**
 * Interactive traffic is a small share of a copy's work; 10% of the receives keeps a batch file
 * moving at a tenth of the copies' pace even while interactive jobs would fill them alone.
 */
export const DEFAULT_BATCH_LANE_FLOOR_PERCENT = 10;

/**
 * Chosen by measurement (README, "Lanes"): on the lanes bench, with the batch landing in the
 * flowing interactive trace and the batchers sharing the room under the cap, 35% keeps the
 * interactive p95 at 1.24× idle while the batch drains 0.90 of what the interactive jobs leave
 * (15% kept 1.12× and drained 0.50). On Llama-2-7B on an H100 (a 5.95 ms fixed part, 0.000174 ms a
 * context token) 35% lets the batch lane hold 11,968 KV tokens on a copy while interactive jobs are
 * around: eleven 512 + 512 jobs, the batch load at which the latency model puts the bound.
 */
export const DEFAULT_INTERACTIVE_SLOWDOWN_PERCENT = 35;

/** What a route runs with until ops say otherwise. */
export function defaultRouteSettings(route: Route): RouteSettings {
  return {
    dispatch: "adaptive",
    top_up: true,
    max_in_flight_per_copy: route.limits.max_sequences,
    max_wait_ms: route.window.max_wait_ms,
    latency_objective_ms: 30_000,
    warming_recheck_seconds: 30,
    max_warming_wait_seconds: DEFAULT_MAX_WARMING_WAIT_SECONDS,
    batch_lane_floor_percent: DEFAULT_BATCH_LANE_FLOOR_PERCENT,
    interactive_slowdown_percent: Math.min(DEFAULT_INTERACTIVE_SLOWDOWN_PERCENT, maxInteractiveSlowdownPercent(route)),
    measured_hold: true,
  };
}

/** Stored settings over the defaults: settings stored before a knob existed get its default. */
export function effectiveRouteSettings(route: Route, stored: Partial<RouteSettings> | undefined): RouteSettings {
  return { ...defaultRouteSettings(route), ...stored };
}

/**
 * Validates a change of settings against the schema and the route's limits. `patch` may name
 * only some fields; the rest keep their current values.
 */
export function checkRouteSettings(route: Route, current: RouteSettings, patch: unknown): RouteSettings {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) throw new ValidationError("body: must be a JSON object", "body");
  const parsed = routeSettingsSchema.safeParse({ ...current, ...patch });
  if (!parsed.success) throw toValidationError(parsed.error);
  const settings = parsed.data;
  if (settings.max_in_flight_per_copy > route.limits.max_sequences) {
    throw new ValidationError(
      `max_in_flight_per_copy: must be at most ${route.limits.max_sequences}, the max_sequences of model ${route.name}'s components`,
      "max_in_flight_per_copy",
    );
  }
  const slowdownCeiling = maxInteractiveSlowdownPercent(route);
  if (settings.interactive_slowdown_percent > slowdownCeiling) {
    throw new ValidationError(
      `interactive_slowdown_percent: must be at most ${slowdownCeiling} for model ${route.name}: past it the batch lane could fill a copy of its components and leave an interactive job no room to start`,
      "interactive_slowdown_percent",
    );
  }
  if (settings.max_wait_ms >= settings.latency_objective_ms) {
    throw new ValidationError("max_wait_ms: must be less than latency_objective_ms", "max_wait_ms");
  }
  return settings;
}

/** The highest interactive_slowdown_percent the route's components allow (batch-lane-cap.ts, maxSlowdownPercent); at least 1. */
export function maxInteractiveSlowdownPercent(route: Route): number {
  const largestJob = route.limits.max_prompt_tokens + route.limits.max_new_tokens;
  return Math.max(1, Math.min(...route.components.map((c) => maxSlowdownPercent(c, largestJob))));
}

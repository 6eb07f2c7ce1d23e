import { METRIC_PERIOD_SECONDS, noCapacityBreach, SCALE_IN_THRESHOLD_OF_TARGET, scaleInBreach, scaleOutBreach, type Breach, type MetricDatapoint } from "./autoscaling-alarms.ts";
import type { AutoscalingSettings } from "./routes.ts";

/**
 * What Application Auto Scaling does with an inference component's DesiredCopyCount, decided from
 * its alarms (autoscaling-alarms.ts), its past scaling activities and the time: target tracking
 * out and in, the step scaling policy that wakes a component at zero, each held by its cooldown as
 * AWS holds it (docs/autoscaling.md). Pure: the caller brings the datapoints and `now`.
 */

/** Step scaling policy that wakes a component: +1 copy, then 60 s before it adds another (AWS's examples). */
export const STEP_SCALING_ADJUSTMENT = 1;
export const STEP_SCALING_COOLDOWN_SECONDS = 60;

/** Why a component's copy count changed. `manual` is anyone else's change (a test, an operator). */
export type ScalingCause = "target-tracking-scale-out" | "target-tracking-scale-in" | "step-scaling-no-capacity" | "manual";

/** One change of a component's desired copies, as DescribeScalingActivities would list it. */
export type ScalingActivity = {
  readonly atMs: number;
  readonly fromCopies: number;
  readonly toCopies: number;
  readonly cause: ScalingCause;
};

export type ScalingDecision = {
  /** The desired copies after the decision: unchanged unless `reason` is a cause of change. */
  readonly desiredCopies: number;
  readonly reason: Exclude<ScalingCause, "manual"> | "held-by-cooldown" | "none";
  /** In words, with the numbers that decided. */
  readonly detail: string;
};

/**
 * Every delay of the scaling machinery, in ms of the emulator's clock, all divided by one
 * `timeCompression` so that a bench can run a day in minutes without changing how the delays
 * compare (a warm-up compressed alone would make scaling look better than it is).
 */
export type AutoscalingTiming = {
  readonly metricPeriodMs: number;
  readonly scaleOutCooldownMs: number;
  readonly scaleInCooldownMs: number;
  readonly stepCooldownMs: number;
};

/** `seconds` of AWS time as ms of a clock that runs `timeCompression` times faster. */
export function compressedMs(seconds: number, timeCompression: number): number {
  if (!(timeCompression > 0) || !Number.isFinite(timeCompression)) throw new RangeError(`time compression must be a positive number, got ${timeCompression}`);
  return (seconds * 1000) / timeCompression;
}

export function autoscalingTiming(scaling: AutoscalingSettings, timeCompression: number): AutoscalingTiming {
  return {
    metricPeriodMs: compressedMs(METRIC_PERIOD_SECONDS, timeCompression),
    scaleOutCooldownMs: compressedMs(scaling.scale_out_cooldown_seconds, timeCompression),
    scaleInCooldownMs: compressedMs(scaling.scale_in_cooldown_seconds, timeCompression),
    stepCooldownMs: compressedMs(STEP_SCALING_COOLDOWN_SECONDS, timeCompression),
  };
}

export type ScalingInput = {
  readonly scaling: AutoscalingSettings;
  readonly timing: AutoscalingTiming;
  /** DesiredCopyCount now. */
  readonly desiredCopies: number;
  /** The component's closed metric periods, oldest first. */
  readonly datapoints: readonly MetricDatapoint[];
  /** The component's scaling activities, oldest first. */
  readonly activities: readonly ScalingActivity[];
  readonly nowMs: number;
};

/** What one policy wants: a new count, a hold by its cooldown, or nothing. */
type Proposal = { readonly kind: "scale"; readonly to: number; readonly detail: string } | { readonly kind: "held"; readonly detail: string } | undefined;

export function decideScaling(input: ScalingInput): ScalingDecision {
  const { desiredCopies } = input;
  const target = input.scaling.target_concurrent_requests_per_copy;
  const step = stepScaleOut(input, noCapacityBreach(input.datapoints));
  const out = targetTrackingScaleOut(input, scaleOutBreach(input.datapoints, target));
  // Both policies may fire at once: the larger scale-out wins, as Application Auto Scaling does.
  const chosen = [
    { reason: "step-scaling-no-capacity", proposal: step },
    { reason: "target-tracking-scale-out", proposal: out },
  ] as const;
  const scales = chosen.flatMap(({ reason, proposal }) => (proposal?.kind === "scale" ? [{ reason, ...proposal }] : []));
  const largest = scales.reduce<(typeof scales)[number] | undefined>((best, s) => (best && best.to >= s.to ? best : s), undefined);
  if (largest) return { desiredCopies: largest.to, reason: largest.reason, detail: largest.detail };
  const held = chosen.find(({ proposal }) => proposal?.kind === "held")?.proposal;
  if (held) return { desiredCopies, reason: "held-by-cooldown", detail: held.detail };

  const scaleIn = targetTrackingScaleIn(input, scaleInBreach(input.datapoints, target));
  if (scaleIn?.kind === "scale") return { desiredCopies: scaleIn.to, reason: "target-tracking-scale-in", detail: scaleIn.detail };
  if (scaleIn?.kind === "held") return { desiredCopies, reason: "held-by-cooldown", detail: scaleIn.detail };
  return { desiredCopies, reason: "none", detail: noneDetail(input) };
}

function noneDetail(input: ScalingInput): string {
  const { scaling, desiredCopies } = input;
  const atLimit = desiredCopies >= scaling.max_copies && (noCapacityBreach(input.datapoints) || scaleOutBreach(input.datapoints, scaling.target_concurrent_requests_per_copy));
  return atLimit ? `an alarm is in ALARM but ${desiredCopies} copies is max_copies` : "no alarm in ALARM";
}

const clampTo = (scaling: AutoscalingSettings, copies: number) => Math.min(scaling.max_copies, Math.max(scaling.min_copies, copies));

/** The latest activity of `cause` still in its cooldown at `nowMs`. */
function cooling(activities: readonly ScalingActivity[], cause: ScalingCause, cooldownMs: number, nowMs: number): ScalingActivity | undefined {
  const last = activities.findLast((a) => a.cause === cause);
  return last && nowMs < last.atMs + cooldownMs ? last : undefined;
}

/**
 * The step scaling policy on the no-capacity alarm: one copy more. While its cooldown runs, the
 * copy it added counts as part of the capacity: it adds nothing again unless a larger step is due.
 */
function stepScaleOut(input: ScalingInput, breach: Breach | undefined): Proposal {
  if (!breach) return undefined;
  const { scaling, desiredCopies, timing, nowMs } = input;
  const last = cooling(input.activities, "step-scaling-no-capacity", timing.stepCooldownMs, nowMs);
  const base = last ? last.fromCopies : desiredCopies;
  const to = clampTo(scaling, base + STEP_SCALING_ADJUSTMENT);
  const why = `${breach.value} invocations found no copy in the last minute`;
  if (to > desiredCopies) return { kind: "scale", to, detail: `${why}: ${desiredCopies} -> ${to} copies` };
  if (last) return { kind: "held", detail: `${why}, but the step at ${last.atMs} ms (${last.fromCopies} -> ${last.toCopies}) is in its cooldown` };
  return undefined;
}

/**
 * Target tracking's scale-out: the copies that bring the metric back to the target,
 * ceil(copies × metric / target). During the scale-out cooldown the copies the last scale-out
 * added count as capacity: it scales out again only to more than that scale-out asked for.
 */
function targetTrackingScaleOut(input: ScalingInput, breach: Breach | undefined): Proposal {
  if (!breach) return undefined;
  const { scaling, desiredCopies, timing, nowMs } = input;
  const target = scaling.target_concurrent_requests_per_copy;
  const last = cooling(input.activities, "target-tracking-scale-out", timing.scaleOutCooldownMs, nowMs);
  const base = last ? last.fromCopies : desiredCopies;
  const to = clampTo(scaling, Math.ceil((base * breach.value) / target));
  const why = `ConcurrentRequestsPerCopy ${round(breach.value)} > target ${target}`;
  if (to > desiredCopies) return { kind: "scale", to, detail: `${why}: ${desiredCopies} -> ${to} copies` };
  if (last) return { kind: "held", detail: `${why}, but the scale-out at ${last.atMs} ms (${last.fromCopies} -> ${last.toCopies}) is in its cooldown` };
  return undefined;
}

/**
 * Target tracking's scale-in: down to ceil(copies × metric / target), never under min_copies (0
 * lets an idle component go to zero). Blocked for the scale-in cooldown after a scale-in, unless a
 * scale-out came since: a scale-out ends the scale-in cooldown.
 */
function targetTrackingScaleIn(input: ScalingInput, breach: Breach | undefined): Proposal {
  if (!breach) return undefined;
  const { scaling, desiredCopies, timing, nowMs, activities } = input;
  const target = scaling.target_concurrent_requests_per_copy;
  const why = `ConcurrentRequestsPerCopy ${round(breach.value)} < ${round(target * SCALE_IN_THRESHOLD_OF_TARGET)} (90% of target ${target}) for 15 minutes`;
  const last = cooling(activities, "target-tracking-scale-in", timing.scaleInCooldownMs, nowMs);
  const scaledOutSince = last !== undefined && activities.some((a) => a.atMs >= last.atMs && a.toCopies > a.fromCopies);
  if (last && !scaledOutSince) {
    return { kind: "held", detail: `${why}, but the scale-in at ${last.atMs} ms (${last.fromCopies} -> ${last.toCopies}) is in its cooldown` };
  }
  const to = clampTo(scaling, Math.ceil((desiredCopies * breach.value) / target));
  return to < desiredCopies ? { kind: "scale", to, detail: `${why}: ${desiredCopies} -> ${to} copies` } : undefined;
}

const round = (value: number) => Math.round(value * 100) / 100;

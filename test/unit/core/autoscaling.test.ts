import { describe, expect, it } from "vitest";
import type { MetricDatapoint } from "#shared/core/autoscaling-alarms";
import { autoscalingTiming, compressedMs, decideScaling, type ScalingActivity, type ScalingInput } from "#shared/core/autoscaling";
import type { AutoscalingSettings } from "#shared/core/routes";

const scaling: AutoscalingSettings = { min_copies: 0, max_copies: 3, target_concurrent_requests_per_copy: 10, scale_out_cooldown_seconds: 60, scale_in_cooldown_seconds: 300 };
const timing = autoscalingTiming(scaling, 1);
const PERIOD_MS = 10_000;

/** Closed 10-s periods from 0: ConcurrentRequestsPerCopy of each (undefined: no copy served), and no failures. */
const periods = (values: readonly (number | undefined)[]): MetricDatapoint[] =>
  values.map((value, period) => ({ period, concurrentRequestsPerCopy: value, noCapacityInvocationFailures: 0 }));
const repeat = (value: number | undefined, count: number) => Array.from({ length: count }, () => value);
/** `count` closed periods with no copy serving, and `failures` in those listed. */
const atZero = (count: number, failures: Readonly<Record<number, number>>): MetricDatapoint[] =>
  periods(repeat(undefined, count)).map((d) => ({ ...d, noCapacityInvocationFailures: failures[d.period] ?? 0 }));

/** The decision at the end of the datapoints' last period, unless `nowMs` says otherwise. */
function decide(input: Partial<ScalingInput> & Pick<ScalingInput, "desiredCopies" | "datapoints">) {
  const nowMs = input.datapoints.length * PERIOD_MS;
  return decideScaling({ scaling, timing, activities: [], nowMs, ...input });
}

const activity = (atMs: number, fromCopies: number, toCopies: number, cause: ScalingActivity["cause"]): ScalingActivity => ({ atMs, fromCopies, toCopies, cause });

describe("decideScaling: target tracking scale-out", () => {
  it("scales out to ceil(copies × metric / target) once a whole minute is above the target", () => {
    // Act
    const fiveHigh = decide({ desiredCopies: 1, datapoints: periods(repeat(15, 5)) });
    const sixHigh = decide({ desiredCopies: 1, datapoints: periods(repeat(15, 6)) });

    // Assess
    expect(fiveHigh).toMatchObject({ desiredCopies: 1, reason: "none" });
    expect(sixHigh).toMatchObject({ desiredCopies: 2, reason: "target-tracking-scale-out" });
    expect(sixHigh.detail).toContain("ConcurrentRequestsPerCopy 15 > target 10: 1 -> 2 copies");
  });

  it("reads whole minutes as CloudWatch aligns them: a high end of an unfinished minute waits for it", () => {
    // Act
    const decision = decide({ desiredCopies: 1, datapoints: periods([...repeat(5, 6), ...repeat(50, 5)]) });

    // Assess
    expect(decision).toMatchObject({ desiredCopies: 1, reason: "none" });
  });

  it("averages the minute's datapoints", () => {
    // Act
    const decision = decide({ desiredCopies: 2, datapoints: periods([30, 30, 0, 0, 0, 0]) });

    // Assess
    expect(decision).toMatchObject({ desiredCopies: 2, reason: "none" });
  });

  it("never goes above max_copies", () => {
    // Act
    const capped = decide({ desiredCopies: 1, datapoints: periods(repeat(100, 6)) });
    const atMax = decide({ desiredCopies: 3, datapoints: periods(repeat(100, 6)) });

    // Assess
    expect(capped).toMatchObject({ desiredCopies: 3, reason: "target-tracking-scale-out" });
    expect(atMax).toMatchObject({ desiredCopies: 3, reason: "none", detail: expect.stringContaining("max_copies") });
  });

  it("is held by its cooldown, where the copies it added count, unless a larger scale-out is due", () => {
    // Prepare
    const datapoints = periods(repeat(15, 12));
    const scaledOut = [activity(60_000, 1, 2, "target-tracking-scale-out")];

    // Act
    const held = decide({ desiredCopies: 2, datapoints, activities: scaledOut, nowMs: 90_000 });
    const larger = decide({ desiredCopies: 2, datapoints: periods(repeat(25, 12)), activities: scaledOut, nowMs: 90_000 });
    const after = decide({ desiredCopies: 2, datapoints, activities: scaledOut, nowMs: 120_000 });

    // Assess
    expect(held).toMatchObject({ desiredCopies: 2, reason: "held-by-cooldown", detail: expect.stringContaining("cooldown") });
    expect(larger).toMatchObject({ desiredCopies: 3, reason: "target-tracking-scale-out" });
    expect(after).toMatchObject({ desiredCopies: 3, reason: "target-tracking-scale-out" });
  });

  it("does not fire on minutes without a datapoint: no copy serving is not a low or a high metric", () => {
    // Act
    const decision = decide({ desiredCopies: 1, datapoints: periods(repeat(undefined, 120)) });

    // Assess
    expect(decision).toMatchObject({ desiredCopies: 1, reason: "none", detail: "no alarm in ALARM" });
  });
});

describe("decideScaling: target tracking scale-in", () => {
  it("scales in after 90 datapoints (15 minutes) under 90% of the target, never under min_copies", () => {
    // Prepare
    const atLeastOne = { ...scaling, min_copies: 1 };

    // Act
    const early = decide({ scaling: atLeastOne, desiredCopies: 3, datapoints: periods(repeat(1, 89)) });
    const due = decide({ scaling: atLeastOne, desiredCopies: 3, datapoints: periods(repeat(1, 90)) });
    const toMin = decide({ scaling: atLeastOne, desiredCopies: 3, datapoints: periods(repeat(0, 90)) });

    // Assess
    expect(early).toMatchObject({ desiredCopies: 3, reason: "none" });
    expect(due).toMatchObject({ desiredCopies: 1, reason: "target-tracking-scale-in", detail: expect.stringContaining("3 -> 1 copies") });
    expect(toMin).toMatchObject({ desiredCopies: 1, reason: "target-tracking-scale-in" });
  });

  it("scales in only to the copies that keep the metric under the target", () => {
    // Act
    const decision = decide({ desiredCopies: 3, datapoints: periods(repeat(8, 90)) });

    // Assess
    expect(decision).toMatchObject({ desiredCopies: 3, reason: "none" });
    expect(decide({ desiredCopies: 3, datapoints: periods(repeat(6, 90)) })).toMatchObject({ desiredCopies: 2 });
  });

  it("goes to zero when min_copies is 0 and the component is idle", () => {
    // Act
    const decision = decide({ desiredCopies: 1, datapoints: periods(repeat(0, 90)) });

    // Assess
    expect(decision).toMatchObject({ desiredCopies: 0, reason: "target-tracking-scale-in" });
  });

  it("waits while one datapoint of the 90 is at 90% of the target or above, or missing", () => {
    // Act
    const oneBusy = decide({ desiredCopies: 2, datapoints: periods([...repeat(0, 45), 9, ...repeat(0, 44)]) });
    const oneMissing = decide({ desiredCopies: 2, datapoints: periods([...repeat(0, 45), undefined, ...repeat(0, 44)]) });

    // Assess
    expect(oneBusy).toMatchObject({ desiredCopies: 2, reason: "none" });
    expect(oneMissing).toMatchObject({ desiredCopies: 2, reason: "none" });
  });

  it("is held by the scale-in cooldown after a scale-in, which a scale-out ends", () => {
    // Prepare
    const datapoints = periods(repeat(0, 120));
    const scaledIn = activity(1_000_000, 3, 2, "target-tracking-scale-in");
    const atLeastOne = { ...scaling, min_copies: 1 };

    // Act
    const held = decide({ scaling: atLeastOne, desiredCopies: 2, datapoints, activities: [scaledIn], nowMs: 1_200_000 });
    const after = decide({ scaling: atLeastOne, desiredCopies: 2, datapoints, activities: [scaledIn], nowMs: 1_300_000 });
    const endedByScaleOut = decide({
      scaling: atLeastOne, desiredCopies: 3, datapoints, activities: [scaledIn, activity(1_100_000, 2, 3, "step-scaling-no-capacity")], nowMs: 1_200_000,
    });

    // Assess
    expect(held).toMatchObject({ desiredCopies: 2, reason: "held-by-cooldown", detail: expect.stringContaining("scale-in at 1000000 ms") });
    expect(after).toMatchObject({ desiredCopies: 1, reason: "target-tracking-scale-in" });
    expect(endedByScaleOut).toMatchObject({ desiredCopies: 1, reason: "target-tracking-scale-in" });
  });
});

describe("decideScaling: the step scaling policy on NoCapacityInvocationFailures", () => {
  it("wakes a component at zero once a minute with a no-capacity failure has closed", () => {
    // Act
    const minuteOpen = decide({ desiredCopies: 0, datapoints: atZero(9, { 7: 1 }) });
    const minuteClosed = decide({ desiredCopies: 0, datapoints: atZero(12, { 7: 1 }) });

    // Assess
    expect(minuteOpen).toMatchObject({ desiredCopies: 0, reason: "none" });
    expect(minuteClosed).toMatchObject({ desiredCopies: 1, reason: "step-scaling-no-capacity", detail: "1 invocations found no copy in the last minute: 0 -> 1 copies" });
  });

  it("adds one more copy only after its 60-s cooldown, if the failures go on", () => {
    // Prepare
    const woke = [activity(60_000, 0, 1, "step-scaling-no-capacity")];
    const datapoints = atZero(12, { 7: 2 });

    // Act
    const cooling = decide({ desiredCopies: 1, datapoints, activities: woke, nowMs: 100_000 });
    const after = decide({ desiredCopies: 1, datapoints, activities: woke, nowMs: 130_000 });
    const stopped = decide({ desiredCopies: 1, datapoints: atZero(18, { 7: 2 }), activities: woke, nowMs: 180_000 });

    // Assess
    expect(cooling).toMatchObject({ desiredCopies: 1, reason: "held-by-cooldown" });
    expect(after).toMatchObject({ desiredCopies: 2, reason: "step-scaling-no-capacity" });
    expect(stopped).toMatchObject({ desiredCopies: 1, reason: "none" });
  });

  it("never goes above max_copies, and takes the larger of its step and target tracking's", () => {
    // Prepare
    const busyAndRefusing = periods(repeat(40, 6)).map((d) => ({ ...d, noCapacityInvocationFailures: 1 }));

    // Act
    const atMax = decide({ scaling: { ...scaling, max_copies: 1 }, desiredCopies: 1, datapoints: atZero(6, { 2: 1 }) });
    const both = decide({ desiredCopies: 1, datapoints: busyAndRefusing });

    // Assess
    expect(atMax).toMatchObject({ desiredCopies: 1, reason: "none" });
    expect(both).toMatchObject({ desiredCopies: 3, reason: "target-tracking-scale-out" });
  });
});

describe("autoscalingTiming", () => {
  it("divides every delay by the same time compression", () => {
    // Act
    const compressed = autoscalingTiming(scaling, 60);

    // Assess
    expect(compressed).toEqual({ metricPeriodMs: 10_000 / 60, scaleOutCooldownMs: 1000, scaleInCooldownMs: 5000, stepCooldownMs: 1000 });
    expect(timing).toEqual({ metricPeriodMs: 10_000, scaleOutCooldownMs: 60_000, scaleInCooldownMs: 300_000, stepCooldownMs: 60_000 });
  });

  it("refuses a compression that is not a positive number", () => {
    expect(() => compressedMs(10, 0)).toThrow(/positive number/);
    expect(() => compressedMs(10, Number.NaN)).toThrow(/positive number/);
  });
});

import { describe, expect, it } from "vitest";
import { nextRampRpm, type RampPlan, type RampStep, stepVerdict, sustainedRpm } from "../../tools/bench/ramp.ts";

const plan: RampPlan = { startRpm: 1_000, factor: 1.5, maxRpm: 8_000, refineSteps: 2, resolution: 0.05 };

/** Runs the ramp against a stack that holds every rate up to `limit`: the rates it tried, in order. */
function ramp(limit: number, p = plan): RampStep[] {
  const steps: RampStep[] = [];
  for (let rpm = nextRampRpm(p, steps); rpm !== undefined; rpm = nextRampRpm(p, steps)) {
    steps.push({ rpm, held: rpm <= limit });
    if (steps.length > 50) throw new Error("the ramp does not end");
  }
  return steps;
}

describe("the single-jobs ramp (issue 18 item 3)", () => {
  it("climbs geometrically while steps hold, then halves the gap between the highest held and the lowest broken", () => {
    const steps = ramp(3_000);
    expect(steps.map((s) => s.rpm)).toEqual([1_000, 1_500, 2_250, 3_375, 2_813, 3_094]);
    expect(steps.map((s) => s.held)).toEqual([true, true, true, false, true, false]);
    expect(sustainedRpm(steps)).toBe(2_813);
  });

  it("refines downwards when the midpoint breaks too", () => {
    const steps = ramp(2_500);
    // 2,813 breaks too: the next halves 2,250-2,813.
    expect(steps.map((s) => s.rpm)).toEqual([1_000, 1_500, 2_250, 3_375, 2_813, 2_532]);
    expect(sustainedRpm(steps)).toBe(2_250);
  });

  it("stops at the plan's top when nothing breaks, and reports that top", () => {
    const steps = ramp(1e9);
    expect(steps.map((s) => s.rpm)).toEqual([1_000, 1_500, 2_250, 3_375, 5_063, 7_595, 8_000]);
    expect(steps.every((s) => s.held)).toBe(true);
    expect(sustainedRpm(steps)).toBe(8_000);
  });

  it("ends at once when the first step breaks: nothing held", () => {
    const steps = ramp(500);
    expect(steps).toEqual([{ rpm: 1_000, held: false }]);
    expect(sustainedRpm(steps)).toBeUndefined();
  });

  it("stops refining once the gap is within the resolution", () => {
    const steps = ramp(3_000, { ...plan, refineSteps: 10, resolution: 0.1 });
    // 2,813-3,375 is 20% of 2,813; then 3,094 breaks and 2,813-3,094 is within 10%.
    expect(steps.map((s) => s.rpm)).toEqual([1_000, 1_500, 2_250, 3_375, 2_813, 3_094]);
    expect(sustainedRpm(steps)).toBe(2_813);
  });

  it("does not count a rate that held above one that broke (luck on a shared machine)", () => {
    expect(sustainedRpm([{ rpm: 1_000, held: true }, { rpm: 2_000, held: false }, { rpm: 3_000, held: true }])).toBe(1_000);
  });

  it("refuses a plan that cannot climb", () => {
    expect(() => nextRampRpm({ ...plan, factor: 1 }, [])).toThrow(/factor must be above 1/);
    expect(() => nextRampRpm({ ...plan, maxRpm: 10 }, [])).toThrow(/startRpm <= maxRpm/);
  });
});

describe("a step's verdict", () => {
  const step = { rpm: 3_000, requests: 1_000, shed: 0, failed: 0, unfinished: 0, p95Ms: 2_400, engineP95Ms: 900 };

  it("holds when every job was accepted and answered within the bound over the engine's p95", () => {
    expect(stepVerdict(step)).toEqual({ held: true, reason: "every job answered, p95 1.50 s over the engine's" });
  });

  it("breaks on any shed submit, failed or unanswered job, or a p95 past the bound, and says which", () => {
    expect(stepVerdict({ ...step, shed: 3 })).toEqual({ held: false, reason: "3 of 1000 submits shed" });
    expect(stepVerdict({ ...step, failed: 1 })).toMatchObject({ held: false, reason: "1 of 1000 jobs failed" });
    expect(stepVerdict({ ...step, unfinished: 7 })).toMatchObject({ held: false, reason: "7 of 1000 jobs unanswered at the end" });
    expect(stepVerdict({ ...step, p95Ms: 3_000 })).toEqual({ held: false, reason: "p95 3.00 s, 2.10 s over the engine's (bound 2.0 s)" });
    expect(stepVerdict({ ...step, p95Ms: Number.NaN }).held).toBe(false);
    expect(stepVerdict({ ...step, p95Ms: 3_000 }, 2_500).held).toBe(true);
  });
});

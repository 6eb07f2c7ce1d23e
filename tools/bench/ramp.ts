/**
 * The highest rate of single jobs the stack sustains (issue 18 item 3): a ramp of steps, each a
 * Poisson trace at one rate, geometrically higher until a step breaks, then halved between the
 * highest that held and the lowest that broke. Pure: the runner measures each step, this decides.
 */
export type RampPlan = {
  readonly startRpm: number;
  /** Each step's rate over the last while every step held: above 1. */
  readonly factor: number;
  /** No step above this: the ramp ends there even if every step held. */
  readonly maxRpm: number;
  /** Steps between the highest held and the lowest broken rate, once one broke. */
  readonly refineSteps: number;
  /** Refinement stops once the two are this close (as a share of the held one). */
  readonly resolution: number;
};

/** What a step measured, as the verdict needs it. */
export type StepNumbers = {
  readonly rpm: number;
  readonly requests: number;
  /** Submits answered with anything but 202 (429, 503, a timeout): the stack shed them. */
  readonly shed: number;
  readonly failed: number;
  readonly unfinished: number;
  readonly p95Ms: number;
  /** The engine alone's p95 on the same trace. */
  readonly engineP95Ms: number;
};

export type StepVerdict = { readonly held: boolean; readonly reason: string };

/** How much the pipeline may add to the engine's p95 before a step counts as broken. */
export const P95_OVER_ENGINE_BOUND_MS = 2_000;

/** A step holds when every job was accepted and answered, none failed, and its p95 stays within the bound over the engine's. */
export function stepVerdict(step: StepNumbers, boundMs = P95_OVER_ENGINE_BOUND_MS): StepVerdict {
  if (step.shed > 0) return { held: false, reason: `${step.shed} of ${step.requests} submits shed` };
  if (step.failed > 0) return { held: false, reason: `${step.failed} of ${step.requests} jobs failed` };
  if (step.unfinished > 0) return { held: false, reason: `${step.unfinished} of ${step.requests} jobs unanswered at the end` };
  const over = step.p95Ms - step.engineP95Ms;
  if (!(over <= boundMs)) return { held: false, reason: `p95 ${(step.p95Ms / 1000).toFixed(2)} s, ${(over / 1000).toFixed(2)} s over the engine's (bound ${(boundMs / 1000).toFixed(1)} s)` };
  return { held: true, reason: `every job answered, p95 ${(over / 1000).toFixed(2)} s over the engine's` };
}

export type RampStep = { readonly rpm: number; readonly held: boolean };

/**
 * The highest rate that held below the lowest that broke (a step that held above one that broke
 * was luck on a shared machine, not a rate the stack sustains), or undefined when none did.
 */
export function sustainedRpm(steps: readonly RampStep[]): number | undefined {
  const lowestBroken = Math.min(...steps.filter((s) => !s.held).map((s) => s.rpm));
  const held = steps.filter((s) => s.held && s.rpm < lowestBroken).map((s) => s.rpm);
  return held.length === 0 ? undefined : Math.max(...held);
}

/** The next step's rate, or undefined when the ramp is over. */
export function nextRampRpm(plan: RampPlan, steps: readonly RampStep[]): number | undefined {
  if (!(plan.factor > 1) || !(plan.startRpm > 0) || !(plan.maxRpm >= plan.startRpm)) throw new Error(`ramp plan: factor must be above 1 and 0 < startRpm <= maxRpm, got ${JSON.stringify(plan)}`);
  const last = steps.at(-1);
  if (!last) return plan.startRpm;
  const broken = steps.filter((s) => !s.held).map((s) => s.rpm);
  if (broken.length === 0) {
    if (last.rpm >= plan.maxRpm) return undefined;
    return Math.min(plan.maxRpm, Math.round(last.rpm * plan.factor));
  }
  const lowestBroken = Math.min(...broken);
  // The first step already broke: nothing below it to refine towards.
  const highestHeld = sustainedRpm(steps);
  if (highestHeld === undefined) return undefined;
  // Steps after the first that broke are refinements.
  const refined = steps.length - 1 - steps.findIndex((s) => !s.held);
  if (refined >= plan.refineSteps) return undefined;
  if (lowestBroken - highestHeld <= plan.resolution * highestHeld) return undefined;
  return Math.round((highestHeld + lowestBroken) / 2);
}

import type { GenerationInput, GenerationOutput } from "../core/engine-codec.ts";
import { BatchlineError } from "../core/errors.ts";
import type { BurstMeasurement, CalibrationBurst } from "../core/profile-fit.ts";
import type { Component } from "../core/routes.ts";
import type { Invoker } from "../ports.ts";

/**
 * Runs a calibration plan (core/profile-fit.ts) on a component through the batcher's own
 * invoker: each burst's prompts go out together as the batcher sends a GPU batch (one call each to
 * a continuous-batching engine, one list to a dynamic-batch one), and the burst is timed from the
 * first send to its answer (sendBurst). Bursts run one after another, so that each has the copy alone.
 */

export type CalibrationPrompt = { readonly input: GenerationInput; readonly promptTokens: number };

export type CalibrationDeps = {
  readonly invoker: Invoker;
  /** Monotonic ms. */
  readonly now: () => number;
};

/**
 * Sends a burst as the batcher sends a GPU batch, and when it was answered. A continuous-batching
 * engine gets one call per prompt (as the invoker makes them) and the burst is answered at its
 * first answer: the B answers come out of the same iteration or the next, and a busy client
 * decodes them one after another, so the last answer's time holds B decodes of the client's
 * beside the GPU's. A dynamic-batch engine answers the list at once.
 */
async function sendBurst(deps: CalibrationDeps, component: Component, inputs: readonly GenerationInput[]): Promise<{ readonly results: readonly PromiseSettledResult<GenerationOutput>[]; readonly answeredMs: number }> {
  if (component.engine === "lmi-dynamic") {
    const results = await deps.invoker.invoke(component, inputs);
    return { results, answeredMs: deps.now() };
  }
  let answeredMs = Number.POSITIVE_INFINITY;
  const calls = inputs.map(async (input) => {
    const [result] = await deps.invoker.invoke(component, [input]);
    answeredMs = Math.min(answeredMs, deps.now());
    return result ?? { status: "rejected" as const, reason: new Error("no result") };
  });
  return { results: await Promise.all(calls), answeredMs };
}

/** Times a burst is sent again after a retryable failure before the calibration gives up. */
export const BURST_RETRIES = 2;

export class CalibrationCallError extends Error {
  override readonly name = "CalibrationCallError";
}

/**
 * @param prompt the `index`-th prompt of the whole run for a burst: a text of the burst's prompt
 *   tokens, different from every other from its first token (an engine's prefix cache would
 *   otherwise skip the prefill being timed), with its tokens as the route's tokenizer counts them.
 */
export async function runCalibration(
  deps: CalibrationDeps,
  component: Component,
  bursts: readonly CalibrationBurst[],
  prompt: (burst: CalibrationBurst, index: number) => CalibrationPrompt,
  onBurst: (done: number, measurement: BurstMeasurement) => void = () => {},
  onRetry: (burst: CalibrationBurst, reason: string) => void = () => {},
): Promise<BurstMeasurement[]> {
  const measurements: BurstMeasurement[] = [];
  let sent = 0;
  for (const burst of bursts) {
    let tries = 0;
    let timed: { readonly prompts: CalibrationPrompt[]; readonly results: readonly PromiseSettledResult<GenerationOutput>[]; readonly ms: number };
    for (;;) {
      const prompts = Array.from({ length: burst.batch }, () => prompt(burst, sent++));
      const startedMs = deps.now();
      const { results, answeredMs } = await sendBurst(deps, component, prompts.map((p) => p.input));
      timed = { prompts, results, ms: answeredMs - startedMs };
      const failed = results.find((r) => r.status === "rejected");
      if (!failed) break;
      const reason = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
      // A retryable failure (a connection reset, a throttle) spoils one burst's time, not the plan; a refusal is for good.
      if (!(failed.reason instanceof BatchlineError && failed.reason.retryable) || ++tries > BURST_RETRIES) {
        throw new CalibrationCallError(`burst of ${burst.batch} × ${burst.promptTokens} prompt + ${burst.newTokens} new tokens failed: ${reason}`, { cause: failed.reason });
      }
      onRetry(burst, reason);
    }
    const { prompts, results, ms } = timed;
    const sequences = results.map((r, i) => ({ promptTokens: prompts[i]?.promptTokens ?? 0, newTokens: r.status === "fulfilled" ? r.value.completion_tokens : 0 }));
    const measurement = { burst, sequences, ms };
    measurements.push(measurement);
    onBurst(measurements.length, measurement);
  }
  return measurements;
}

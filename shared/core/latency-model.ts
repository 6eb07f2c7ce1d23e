import type { LatencyProfile } from "./profiles.ts";

/** One sequence of a batch: its prompt and how many tokens it will generate. */
export type SequenceShape = { readonly promptTokens: number; readonly newTokens: number };

/** Time of one decode step for `sequences` sequences holding `contextTokens` tokens in all, ms. */
export function decodeStepMs(profile: LatencyProfile, sequences: number, contextTokens: number): number {
  if (sequences === 0) return 0;
  return (
    profile.decodeBaseMs +
    profile.decodePerSequenceMs * sequences +
    profile.decodePerContextTokenMs * contextTokens
  );
}

/** Time to prefill `promptTokens` prompt tokens in one forward pass, ms. */
export function prefillMs(profile: LatencyProfile, promptTokens: number): number {
  if (promptTokens === 0) return 0;
  return Math.max(profile.prefillMinMs, promptTokens / profile.prefillTokensPerMs);
}

/**
 * Timeline of a static batch: one prefill of every prompt, then decode steps until the longest
 * sequence is done; a sequence leaves the batch once it has generated its tokens.
 *
 * @returns when each sequence finishes (ms from the batch start, in input order) and the total.
 * @example
 * staticBatchTimeline(getProfile("llama2-7b-bf16-h100"), [{ promptTokens: 512, newTokens: 512 }]).totalMs // ≈ 3.1 s
 */
export function staticBatchTimeline(
  profile: LatencyProfile,
  batch: readonly SequenceShape[],
): { readonly finishMs: readonly number[]; readonly totalMs: number } {
  let clock = prefillMs(profile, batch.reduce((sum, s) => sum + s.promptTokens, 0));
  const finishMs = batch.map(() => clock);
  const longest = batch.reduce((max, s) => Math.max(max, s.newTokens), 0);
  // The first new token comes out of the prefill; each further token costs one decode step.
  for (let step = 1; step < longest; step++) {
    let active = 0;
    let context = 0;
    for (const s of batch) {
      if (s.newTokens > step) {
        active++;
        context += s.promptTokens + step;
      }
    }
    clock += decodeStepMs(profile, active, context);
    batch.forEach((s, i) => {
      if (s.newTokens === step + 1) finishMs[i] = clock;
    });
  }
  return { finishMs, totalMs: clock };
}

/** Predicted time of a static batch, ms: what the batcher checks against the invocation limit. */
export function staticBatchMs(profile: LatencyProfile, batch: readonly SequenceShape[]): number {
  return staticBatchTimeline(profile, batch).totalMs;
}

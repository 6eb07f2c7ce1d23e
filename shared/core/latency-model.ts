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

/** What one iteration of a continuous-batching engine does. */
export type IterationShape = {
  /** Sequences already running, each decoding one token. */
  readonly decodeSequences: number;
  /** Their context (prompt plus tokens so far), in all. */
  readonly decodeContextTokens: number;
  /** Prompt tokens of the sequences admitted in this iteration (recomputed tokens of a preempted one included). */
  readonly prefillTokens: number;
};

/**
 * Time of one iteration of a continuous-batching engine, ms: the running sequences decode one
 * token each while the newly admitted ones are prefilled in the same forward pass, so the
 * iteration pays both (vLLM V1 and chunked-prefill engines mix them; an engine that runs the
 * prefill as an iteration of its own pays the same sum over the two). The admitted sequences'
 * first tokens come out of their prefill.
 *
 * @example
 * iterationMs(profile, { decodeSequences: 63, decodeContextTokens: 63 * 600, prefillTokens: 512 })
 */
export function iterationMs(profile: LatencyProfile, step: IterationShape): number {
  return decodeStepMs(profile, step.decodeSequences, step.decodeContextTokens) + prefillMs(profile, step.prefillTokens);
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

/**
 * Predicted time of a static batch, ms, in closed form: the same sum as staticBatchTimeline
 * without walking the steps. Sequence i (prompt p, n new tokens) is in n - 1 decode steps and
 * reads (n - 1)·p + n(n - 1)/2 context tokens over them; the fixed cost is paid once per step
 * of the longest sequence. The batcher calls this for every candidate, so it must be O(batch).
 */
export function staticBatchMs(profile: LatencyProfile, batch: readonly SequenceShape[]): number {
  let promptTokens = 0;
  let longest = 0;
  let perSequence = 0;
  for (const s of batch) {
    promptTokens += s.promptTokens;
    longest = Math.max(longest, s.newTokens);
    perSequence += sequenceDecodeCostMs(profile, s);
  }
  return prefillMs(profile, promptTokens) + profile.decodeBaseMs * Math.max(0, longest - 1) + perSequence;
}

/** A sequence's own share of the decode steps it takes part in, ms. */
export function sequenceDecodeCostMs(profile: LatencyProfile, s: SequenceShape): number {
  const steps = Math.max(0, s.newTokens - 1);
  const contextRead = steps * s.promptTokens + (steps * (steps + 1)) / 2;
  return profile.decodePerSequenceMs * steps + profile.decodePerContextTokenMs * contextRead;
}

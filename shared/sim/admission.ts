import type { KvAdmission } from "../core/routes.ts";

/**
 * Who runs in a copy's next iteration: the admission rules of continuous and static batching,
 * as pure functions over the sequences waiting and running.
 */

/** A sequence as the scheduler sees it. */
export type QueuedSequence = {
  readonly promptTokens: number;
  readonly maxNewTokens: number;
  /** Tokens generated so far; a preempted sequence keeps them and recomputes them in its next prefill. */
  readonly generated: number;
};

export type AdmissionLimits = {
  /** Sequences one iteration runs at most (max_sequences: LMI max_rolling_batch_size, vLLM max_num_seqs). */
  readonly maxSequences: number;
  /** KV-cache tokens of the copy (token_budget). */
  readonly tokenBudget: number;
};

/** vLLM hands the KV cache out in blocks of 16 tokens. */
export const PAGE_TOKENS = 16;

/**
 * KV-cache tokens a sequence takes in the next iteration: with `reserve`, its prompt and all the
 * tokens it may generate, held from admission on; with `paged`, the blocks its context fills once
 * the iteration has written its next token.
 */
export function cacheTokens(s: QueuedSequence, kv: KvAdmission): number {
  if (kv === "reserve") return s.promptTokens + s.maxNewTokens;
  return Math.ceil((s.promptTokens + s.generated + 1) / PAGE_TOKENS) * PAGE_TOKENS;
}

export const cacheTokensOf = (sequences: readonly QueuedSequence[], kv: KvAdmission): number =>
  sequences.reduce((sum, s) => sum + cacheTokens(s, kv), 0);

/** How many waiting sequences join (from the head), and how many running ones leave (from the newest end). */
export type Admission = { readonly admit: number; readonly preempt: number };

/**
 * Continuous batching. Paged: when the running sequences' next tokens no longer fit the cache, the
 * newest are preempted until they do (vLLM's recompute preemption), and nobody joins in that
 * iteration. Otherwise waiting sequences join in arrival order while the sequence count and the
 * cache allow; the first that does not fit stops the rest, so a long prompt is never overtaken.
 *
 * @example
 * admitContinuous([], [{ promptTokens: 512, maxNewTokens: 512, generated: 0 }], "reserve", { maxSequences: 8, tokenBudget: 2048 })
 * // { admit: 1, preempt: 0 }
 */
export function admitContinuous(
  running: readonly QueuedSequence[],
  waiting: readonly QueuedSequence[],
  kv: KvAdmission,
  limits: AdmissionLimits,
): Admission {
  let used = cacheTokensOf(running, kv);
  let preempt = 0;
  // One sequence always fits: requests whose prompt and max new tokens exceed the budget are refused.
  while (used > limits.tokenBudget && preempt < running.length - 1) {
    preempt++;
    const newest = running[running.length - preempt];
    if (newest) used -= cacheTokens(newest, kv);
  }
  if (preempt > 0) return { admit: 0, preempt };
  let admit = 0;
  for (const s of waiting) {
    const tokens = cacheTokens(s, kv);
    if (running.length + admit >= limits.maxSequences || used + tokens > limits.tokenBudget) break;
    admit++;
    used += tokens;
  }
  return { admit, preempt: 0 };
}

/**
 * Static (dynamic) batching: only when nothing runs, whole requests join, in arrival order, while
 * their sequences fit max sequences and the cache reserved for prompt plus max new tokens.
 *
 * @returns how many sequences, from the head of the queue, make the next batch.
 */
export function admitStatic(waitingRequests: readonly (readonly QueuedSequence[])[], limits: AdmissionLimits): number {
  let sequences = 0;
  let tokens = 0;
  for (const request of waitingRequests) {
    const nextSequences = sequences + request.length;
    const nextTokens = tokens + cacheTokensOf(request, "reserve");
    if (nextSequences > limits.maxSequences || nextTokens > limits.tokenBudget) break;
    sequences = nextSequences;
    tokens = nextTokens;
  }
  return sequences;
}

import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import type { LatencyProfile } from "#shared/core/profiles";

/**
 * The capacity the interactive jobs leave the batch (issue 12 item 3's second target), on one copy
 * of a continuous-batching engine, by its latency model.
 *
 * Not the engine's ceiling less the interactive jobs' tokens: an interactive job decodes at the
 * step time of everything on its copy (5.95 ms + 0.000174 ms a context token for Llama-2-7B on an
 * H100), so a copy full of batch work (about 110 sequences of 512 + 512) steps 3.4× slower than
 * one holding the interactive jobs alone, and the first target (interactive p95 at most 1.25× idle)
 * cannot hold there. What the interactive jobs leave is the batch throughput of the largest batch
 * load at which they still meet it: n batch sequences decoding beside them, every job's prefill
 * (batch and interactive) taking its time out of the same iterations (iterationMs).
 *
 * Steady state, per ms: with steps of s(n) ms and a share ρ of the time spent prefilling, the batch
 * finishes r = n (1 − ρ) / (s · out) jobs a ms, and ρ = (r + λ) · p, p the prefill of one prompt, λ
 * the interactive arrival rate; so r = n (1 − λp) / (s · out + n p). An interactive job decodes its
 * tokens at s / (1 − ρ) a token, against s₀ / (1 − λp) on the copy without the batch: its latency
 * grows by out · (s / (1 − ρ) − s₀ / (1 − λp)).
 */

export type JobShape = { readonly promptTokens: number; readonly maxTokens: number };

export type CapacityAtBoundInput = {
  readonly profile: LatencyProfile;
  readonly batch: JobShape;
  readonly interactive: JobShape & {
    /** Arrivals a minute. */
    readonly rpm: number;
    /** Its idle p95, ms: the bound is `bound` times this. */
    readonly idleP95Ms: number;
    /** Interactive sequences on the copy at once, on average (arrival rate × time on the GPU). */
    readonly concurrent: number;
  };
  /** The target's ratio: 1.25. */
  readonly bound: number;
  /** The most sequences the copy admits. */
  readonly maxSequences: number;
};

export type CapacityAtBound = {
  /** Batch sequences on the copy at the operating point. */
  readonly batch_sequences: number;
  /** The decode step there, and what an interactive job's p95 becomes by the model. */
  readonly step_ms: number;
  readonly interactive_p95_ms: number;
  /** Batch jobs a minute. */
  readonly rpm: number;
};

/** Mean context of a sequence over its decode: its prompt and half its output. */
const meanContext = (shape: JobShape) => shape.promptTokens + shape.maxTokens / 2;

export function capacityAtInteractiveBound(input: CapacityAtBoundInput): CapacityAtBound {
  const { profile, batch, interactive } = input;
  const lambdaPerMs = interactive.rpm / 60_000;
  const interactivePrefillShare = lambdaPerMs * prefillMs(profile, interactive.promptTokens);
  const batchPrefillMs = prefillMs(profile, batch.promptTokens);
  const interactiveContext = interactive.concurrent * meanContext(interactive);
  const stepWith = (n: number) => decodeStepMs(profile, n + interactive.concurrent, interactiveContext + n * meanContext(batch));
  const aloneMsPerToken = stepWith(0) / (1 - interactivePrefillShare);
  const limit = input.bound * interactive.idleP95Ms;

  const at = (n: number) => {
    const step = stepWith(n);
    const perMs = (n * (1 - interactivePrefillShare)) / (step * batch.maxTokens + n * batchPrefillMs);
    const prefillShare = (perMs + lambdaPerMs) * batchPrefillMs;
    const p95 = interactive.idleP95Ms + interactive.maxTokens * (step / (1 - prefillShare) - aloneMsPerToken);
    return { batch_sequences: n, step_ms: step, interactive_p95_ms: p95, rpm: perMs * 60_000 };
  };

  let best = at(0);
  for (let n = 1; n + interactive.concurrent <= input.maxSequences; n++) {
    const point = at(n);
    if (point.interactive_p95_ms > limit) break;
    best = point;
  }
  return best;
}

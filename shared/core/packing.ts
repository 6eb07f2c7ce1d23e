import { prefillMs, sequenceDecodeCostMs } from "./latency-model.ts";
import type { LatencyProfile } from "./profiles.ts";
import type { ComponentLimits } from "./routes.ts";

/** One job as the packer sees it. */
export type PackItem = {
  readonly id: string;
  readonly promptTokens: number;
  readonly maxNewTokens: number;
  /** Bytes of this job's prompt in the request body. */
  readonly payloadBytes: number;
  /** 0 (lowest) .. 9 (highest). */
  readonly priority: number;
  /** Epoch ms by which the job must finish, if any. */
  readonly deadlineMs?: number | undefined;
  readonly submittedMs: number;
};

export type PackOptions = {
  readonly limits: ComponentLimits;
  readonly profile: LatencyProfile;
  /** Dynamic-batch engines take the whole GPU batch in one request body; rolling engines one job per body. */
  readonly oneRequestPerBatch: boolean;
  /** Fraction of max_invocation_seconds a batch may be predicted to take (room for a slow GPU). */
  readonly invocationHeadroom?: number;
};

/** Most urgent first: priority, then earliest deadline, then first submitted. */
export function byUrgency(a: PackItem, b: PackItem): number {
  return (
    b.priority - a.priority ||
    (a.deadlineMs ?? Number.POSITIVE_INFINITY) - (b.deadlineMs ?? Number.POSITIVE_INFINITY) ||
    a.submittedMs - b.submittedMs
  );
}

/**
 * Packs jobs into GPU batches that each fit one component copy: at most
 * max_sequences sequences, the KV token budget (prompt + max new tokens, what a reserving engine
 * admits), the request payload limit, and a predicted run time under the invocation timeout.
 * Every item lands in exactly one batch, most urgent first; an item too large for any batch on
 * its own still gets a batch of its own, for the engine to reject with its own message.
 *
 * @example
 * packGpuBatches(items, { limits, profile, oneRequestPerBatch: false }) // [[a, b, c], [d]]
 */
export function packGpuBatches(items: readonly PackItem[], options: PackOptions): PackItem[][] {
  const { limits, profile } = options;
  const maxMs = limits.max_invocation_seconds * 1000 * (options.invocationHeadroom ?? 0.8);
  const batches: PackItem[][] = [];
  let current: PackItem[] = [];
  let tokens = 0;
  let bytes = 0;
  let promptTokens = 0;
  let longest = 0;
  let decodeShare = 0;

  const predictedMs = (extra: PackItem): number =>
    prefillMs(profile, promptTokens + extra.promptTokens) +
    profile.decodeBaseMs * Math.max(0, Math.max(longest, extra.maxNewTokens) - 1) +
    decodeShare +
    sequenceDecodeCostMs(profile, { promptTokens: extra.promptTokens, newTokens: extra.maxNewTokens });

  for (const item of [...items].sort(byUrgency)) {
    const itemTokens = item.promptTokens + item.maxNewTokens;
    const fits =
      current.length < limits.max_sequences &&
      tokens + itemTokens <= limits.token_budget &&
      (!options.oneRequestPerBatch || bytes + item.payloadBytes <= limits.payload_bytes) &&
      predictedMs(item) <= maxMs;
    if (!fits && current.length > 0) {
      batches.push(current);
      current = [];
      tokens = bytes = promptTokens = longest = decodeShare = 0;
    }
    current.push(item);
    tokens += itemTokens;
    bytes += item.payloadBytes;
    promptTokens += item.promptTokens;
    longest = Math.max(longest, item.maxNewTokens);
    decodeShare += sequenceDecodeCostMs(profile, { promptTokens: item.promptTokens, newTokens: item.maxNewTokens });
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

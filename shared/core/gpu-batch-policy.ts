import { continues, needsSeveralCalls, tokensPerCall } from "./continuation.ts";
import { staticBatchMs } from "./latency-model.ts";
import type { PackItem } from "./packing.ts";
import type { LatencyProfile } from "./profiles.ts";
import type { RouteSettings } from "./route-settings.ts";
import type { Component, KvAdmission } from "./routes.ts";

/** Work held on a component: sequences in flight and the KV tokens they may take. */
export type Load = { readonly sequences: number; readonly tokens: number };
export const noLoad: Load = { sequences: 0, tokens: 0 };

export const addLoad = (a: Load, b: Load): Load => ({ sequences: a.sequences + b.sequences, tokens: a.tokens + b.tokens });
export const subtractLoad = (a: Load, b: Load): Load => ({ sequences: a.sequences - b.sequences, tokens: a.tokens - b.tokens });

/**
 * KV tokens a job takes once admitted, counted the way its engine admits: a reserving engine
 * (TGI's max_batch_total_tokens) holds prompt + max new tokens from the start; a paged engine
 * (vLLM) holds only what the sequence has so far, on average its prompt and half its output. The
 * batcher must not count more than the engine does, or it would leave the engine's room unused.
 */
export function demandOf(item: Pick<PackItem, "promptTokens" | "maxNewTokens">, admission: KvAdmission = "reserve"): Load {
  const held = admission === "paged" ? Math.ceil(item.maxNewTokens / 2) : item.maxNewTokens;
  return { sequences: 1, tokens: item.promptTokens + held };
}

/**
 * KV tokens a job takes on a component: as demandOf, except that a job too long for one call,
 * which runs over several (core/continuation.ts), counts its prompt and all its max_tokens on any
 * engine. Each of its calls sends the text so far as prompt, so its KV at a paged engine is no
 * early-stop average: it grows call after call to prompt + max_tokens, and the batcher holds that
 * room for it from its first call to its last.
 */
export function demandOn(item: Pick<PackItem, "promptTokens" | "maxNewTokens">, component: ContinuationTarget): Load {
  if (!continues(component)) return demandOf(item, component.kv_admission);
  const perCall = tokensPerCall(component.latency, component, item.promptTokens + item.maxNewTokens);
  return needsSeveralCalls(item.maxNewTokens, perCall) ? { sequences: 1, tokens: item.promptTokens + item.maxNewTokens } : demandOf(item, component.kv_admission);
}

/** What demandOn reads of a component. */
export type ContinuationTarget = Pick<Component, "kv_admission" | "latency" | "limits" | "format" | "engine">;

/** KV tokens a set of jobs takes on an engine, as it admits them: a GPU batch's size in tokens. */
export function kvTokensOf(items: readonly Pick<PackItem, "promptTokens" | "maxNewTokens">[], admission: KvAdmission = "reserve"): number {
  return items.reduce((sum, item) => sum + demandOf(item, admission).tokens, 0);
}

/**
 * What a component can hold at once over all its copies: the engine's admission limits, or
 * fewer sequences when ops cap them. Past this, jobs wait in SQS rather than in the container.
 */
export function capacityOf(component: Component, settings: Pick<RouteSettings, "max_in_flight_per_copy">): Load {
  const perCopy = Math.min(settings.max_in_flight_per_copy, component.limits.max_sequences);
  return { sequences: component.copies * perCopy, tokens: component.copies * component.limits.token_budget };
}

/** Whether `demand` fits beside `load`; an idle component takes anything, so no job starves. */
export function fits(capacity: Load, load: Load, demand: Load): boolean {
  if (load.sequences === 0) return true;
  return load.sequences + demand.sequences <= capacity.sequences && load.tokens + demand.tokens <= capacity.tokens;
}

export type StaticDecision = { readonly kind: "dispatch" } | { readonly kind: "wait"; readonly forMs: number };

export type StaticDecisionInput = {
  /** The batch that would go now, most urgent first. */
  readonly batch: readonly PackItem[];
  /** Whether that batch already reached a limit of the copy (sequences, tokens, time). */
  readonly full: boolean;
  readonly nowMs: number;
  /** Jobs per ms arriving lately, to predict how a wait fills the batch. */
  readonly arrivalsPerMs: number;
  readonly profile: LatencyProfile;
  /** Measured over predicted time of the copy's static batches (hold-measurements.ts); default 1: the model as calibrated. */
  readonly latencyFactor?: number | undefined;
  readonly settings: Pick<RouteSettings, "dispatch" | "max_wait_ms" | "latency_objective_ms">;
};

/**
 * For a copy that runs one static batch at a time: send the batch now, or hold it for a fuller
 * one. Holding pays when the jobs expected to arrive raise the batch's jobs per copy-second more
 * than the wait costs; it never passes max_wait_ms since the oldest job arrived, nor eats into
 * the time the oldest job needs to finish within its objective. Batch times are the latency
 * model's scaled by the measured factor: a copy running slower than the model leaves less slack
 * before the objective, and makes a wait cost less beside the batch it fills.
 */
export function decideStaticBatch(input: StaticDecisionInput): StaticDecision {
  const { batch, profile, settings } = input;
  const oldest = batch.reduce((min, i) => Math.min(min, i.submittedMs), Number.POSITIVE_INFINITY);
  if (batch.length === 0 || input.full || settings.dispatch === "immediate") return { kind: "dispatch" };
  const shapes = batch.map((i) => ({ promptTokens: i.promptTokens, newTokens: i.maxNewTokens }));
  const factor = input.latencyFactor ?? 1;
  const runMsOf = (batchShapes: typeof shapes) => factor * staticBatchMs(profile, batchShapes);
  const runMs = runMsOf(shapes);
  const heldMs = input.nowMs - oldest;
  const slackMs = Math.min(settings.max_wait_ms - heldMs, settings.latency_objective_ms - heldMs - runMs);
  if (slackMs <= 0) return { kind: "dispatch" };
  const expected = input.arrivalsPerMs * slackMs;
  if (expected < 1) return { kind: "dispatch" };
  // Throughput of the batch now against a batch grown by the expected arrivals after the wait.
  const typical = shapes[0] as { promptTokens: number; newTokens: number };
  const grown = [...shapes, ...Array.from({ length: Math.floor(expected) }, () => typical)];
  const now = batch.length / runMs;
  const later = grown.length / (runMsOf(grown) + slackMs);
  return later > now ? { kind: "wait", forMs: slackMs } : { kind: "dispatch" };
}

import { takesMessages, type GenerationInput, type GenerationOutput } from "./codecs/index.ts";
import { decodeStepMs, prefillMs } from "./latency-model.ts";
import type { LatencyProfile } from "./profiles.ts";
import type { Component } from "./routes.ts";

/**
 * Generations longer than one invocation (README, "Generations longer than one call"). SageMaker
 * answers a call within max_invocation_seconds or not at all, and its streaming call has no
 * longer documented limit (docs/long-generations.md), so a job whose max_tokens cannot be
 * generated within one call runs as several: each asks for what surely fits in one call, and the
 * next sends the prompt plus the text so far, until max_tokens or a stop. The text so far is
 * stored on the job at each call boundary, so that a batcher that dies mid-way costs at most the
 * call it was in.
 */

/** What a job has generated over its calls so far; stored on the job (`progress`) at each call boundary. */
export type Progress = {
  readonly text: string;
  /** Tokens of `text`: the sum of each call's completion tokens, as the engine counted them. */
  readonly tokens: number;
  /** Calls that produced `text`. */
  readonly calls: number;
  /** Prompt tokens read again by the calls after the first: the text so far, each time. */
  readonly extra_prefill_tokens: number;
};

export const NO_PROGRESS: Progress = { text: "", tokens: 0, calls: 0, extra_prefill_tokens: 0 };

/** Fraction of the call's time limit a call is planned to take: room for prefill bursts of others and a slow copy. */
export const CALL_HEADROOM = 0.8;

type CallLimits = Pick<Component, "limits">;

/**
 * The most new tokens one call of a job is planned for: what a copy at its admission limits
 * (max_sequences sequences holding token_budget tokens, its slowest decode step) generates
 * within CALL_HEADROOM of max_invocation_seconds, after prefilling the job's longest context.
 * Planned for the slowest step rather than the copy's load now, because the load may grow while
 * the call runs and a call past the limit is lost whole.
 *
 * @example
 * tokensPerCall(getProfile("llama3-8b-bf16-h100"), component, 131_072) // 1 687 (26.6 ms a step at 256 sequences and 430k tokens)
 */
export function tokensPerCall(profile: LatencyProfile, component: CallLimits, longestContextTokens: number): number {
  const { limits } = component;
  const budgetMs = limits.max_invocation_seconds * 1000 * CALL_HEADROOM - prefillMs(profile, longestContextTokens);
  const slowestStepMs = decodeStepMs(profile, limits.max_sequences, limits.token_budget);
  return Math.max(1, Math.floor(budgetMs / slowestStepMs));
}

/**
 * Whether the component can continue a job over several calls: its format takes the text to
 * continue as a prompt. A chat format sends the messages for the container to render, and
 * continuing an assistant message is a container option (vLLM's continue_final_message) this
 * project does not set: such a job runs in one call, as before.
 */
export function continues(component: Pick<Component, "format">): boolean {
  return !takesMessages(component.format);
}

/** Whether a job runs over several calls on this component: its whole length does not fit one. */
export function needsSeveralCalls(maxTokens: number, perCall: number, progress: Progress = NO_PROGRESS): boolean {
  return progress.calls > 0 || maxTokens > perCall;
}

/** The next call of a job: its input (the prompt plus the text so far, at most perCall new tokens), or undefined when the job is done. */
export function nextCall(input: GenerationInput, maxTokens: number, progress: Progress, perCall: number): GenerationInput | undefined {
  const left = maxTokens - progress.tokens;
  if (left <= 0) return undefined;
  return { ...input, prompt: input.prompt + progress.text, max_new_tokens: Math.min(left, perCall) };
}

/** After a call: the progress with its text, and whether the job is done ("stop": the model ended it; "length": max_tokens reached). */
export function advance(progress: Progress, output: GenerationOutput, asked: number, maxTokens: number): { readonly progress: Progress; readonly done: GenerationOutput["finish_reason"] | undefined } {
  const next: Progress = {
    text: progress.text + output.text,
    tokens: progress.tokens + output.completion_tokens,
    calls: progress.calls + 1,
    extra_prefill_tokens: progress.extra_prefill_tokens + progress.tokens,
  };
  // A call that stopped before what it was asked for ended the answer (EOS or a stop sequence).
  if (output.finish_reason === "stop" || output.completion_tokens < asked) return { progress: next, done: "stop" };
  if (next.tokens >= maxTokens) return { progress: next, done: "length" };
  return { progress: next, done: undefined };
}

/** The job's one output over all its calls. */
export function outputOf(progress: Progress, finishReason: GenerationOutput["finish_reason"]): GenerationOutput {
  return { text: progress.text, completion_tokens: progress.tokens, finish_reason: finishReason };
}

/** DynamoDB's largest item: the job's text so far and then its result live in its item. */
export const ITEM_LIMIT_BYTES = 400 * 1024;
/** What the job item holds besides its request and text: ids, times, breakdown, attribute names. */
const ITEM_OVERHEAD_BYTES = 16 * 1024;

/**
 * Whether one more call's text still fits the job's item beside its request: the call's tokens
 * at the text's own bytes per token so far (4 before any). A job past it ends with what it has
 * ("length", as an engine ends at its context): its result could not be written otherwise.
 *
 * @example
 * nextCallFits({ ...NO_PROGRESS, text: "x".repeat(400_000), tokens: 100_000 }, 1_700, 2_000) // false
 */
export function nextCallFits(progress: Progress, perCall: number, requestBytes: number): boolean {
  const textBytes = new TextEncoder().encode(progress.text).length;
  const bytesPerToken = progress.tokens > 0 ? textBytes / progress.tokens : 4;
  return textBytes + perCall * bytesPerToken + requestBytes + ITEM_OVERHEAD_BYTES <= ITEM_LIMIT_BYTES;
}


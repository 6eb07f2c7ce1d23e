import { takesMessages, type GenerationInput, type GenerationOutput } from "./codecs/index.ts";
import { decodeStepMs, prefillMs } from "./latency-model.ts";
import type { LatencyProfile } from "./profiles.ts";
import type { Component, EngineMode } from "./routes.ts";

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
 * Engines whose chat completions continue the final assistant message when asked
 * (`continue_final_message`, with `add_generation_prompt` off): vLLM's OpenAI server
 * (docs.vllm.ai, "Extra parameters for Chat API") and SGLang's, both vllm-openai here, and TGI's
 * Messages API (huggingface/text-generation-inference#2733, in TGI 3.0). The container renders the
 * chat with the model's own template and stops right after the message's text (Hugging Face's
 * assistant prefill), so the model goes on within its own turn. LMI's chat completions schema
 * documents no such field (its user guide's chat_input_output_schema.md): asked to go on, it would
 * open a new assistant turn after the text so far, a different answer than one call would give.
 */
export const CONTINUES_CHAT: readonly EngineMode[] = ["vllm-openai", "tgi"];

/**
 * Whether the component can continue a job over several calls faithfully: a text format takes
 * the text so far at the end of its prompt; a chat format, as an assistant message the engine
 * continues (CONTINUES_CHAT). routes.yml refuses a component that cannot, where its max_new_tokens
 * does not fit one call (checkContinuable).
 */
export function continues(component: Pick<Component, "format" | "engine">): boolean {
  return !takesMessages(component.format) || CONTINUES_CHAT.includes(component.engine);
}

/**
 * Why a component that cannot continue a generation must keep max_new_tokens within one call, or
 * undefined when it may: the routes file's check (routes.ts). One call of its longest job at its
 * admission limits must fit the invocation's time, or such a job would be lost to the timeout.
 */
export function continuationProblem(component: Pick<Component, "format" | "engine" | "limits" | "latency">): string | undefined {
  if (continues(component)) return undefined;
  const { limits } = component;
  const perCall = tokensPerCall(component.latency, component, limits.max_prompt_tokens + limits.max_new_tokens);
  if (limits.max_new_tokens <= perCall) return undefined;
  return (
    `format ${component.format} on engine ${component.engine} cannot continue a generation over several calls (LMI's chat completions schema has no continue_final_message), ` +
    `so max_new_tokens ${limits.max_new_tokens} must fit one ${limits.max_invocation_seconds} s call: at most ${perCall} at its limits; lower it, or use format lmi or engine vllm-openai`
  );
}

/** Whether a job runs over several calls on this component: its whole length does not fit one. */
export function needsSeveralCalls(maxTokens: number, perCall: number, progress: Progress = NO_PROGRESS): boolean {
  return progress.calls > 0 || maxTokens > perCall;
}

/**
 * The next call of a job, or undefined when the job is done: at most perCall new tokens, on the
 * prompt plus the text so far; for a chat format, the messages with the text so far as the
 * assistant's message to continue (`continue_final_message`).
 */
export function nextCall(input: GenerationInput, maxTokens: number, progress: Progress, perCall: number): GenerationInput | undefined {
  const left = maxTokens - progress.tokens;
  if (left <= 0) return undefined;
  const next = { ...input, max_new_tokens: Math.min(left, perCall) };
  if (progress.text === "") return next;
  const continued = input.messages && { messages: [...input.messages, { role: "assistant" as const, content: progress.text }], continue_final_message: true };
  return { ...next, prompt: input.prompt + progress.text, ...continued };
}

/** The stop sequences of a request, as one list. */
export function stopsOf(stop: GenerationInput["stop"]): readonly string[] {
  return (stop === undefined ? [] : typeof stop === "string" ? [stop] : stop).filter((s) => s.length > 0);
}

/**
 * Where a stop sequence that the seam between two calls split begins in `before + added`: it
 * starts in the text so far and ends in the new call's text, so neither engine call saw it whole.
 * The earliest such start over all the stop sequences, or undefined.
 *
 * @example
 * stopAcrossSeam("the END", "ING. More", ["ENDING"]) // 4
 */
export function stopAcrossSeam(before: string, added: string, stops: readonly string[]): number | undefined {
  const text = before + added;
  let earliest: number | undefined;
  for (const stop of stops) {
    // The first occurrence that ends past the seam; one that starts past it the engine saw whole.
    const at = text.indexOf(stop, Math.max(0, before.length - stop.length + 1));
    if (at >= 0 && at < before.length && (earliest === undefined || at < earliest)) earliest = at;
  }
  return earliest;
}

/**
 * After a call: the progress with its text, and whether the job is done ("stop": the model ended
 * it, or a stop sequence split across the seam, where the text is cut as the engine cuts at a
 * stop; "length": max_tokens reached). Tokens stay those the engine generated, as its usage counts
 * a stop sequence's.
 */
export function advance(progress: Progress, output: GenerationOutput, asked: number, maxTokens: number, stops: readonly string[] = []): { readonly progress: Progress; readonly done: GenerationOutput["finish_reason"] | undefined } {
  const next: Progress = {
    text: progress.text + output.text,
    tokens: progress.tokens + output.completion_tokens,
    calls: progress.calls + 1,
    extra_prefill_tokens: progress.extra_prefill_tokens + progress.tokens,
  };
  const seam = progress.calls > 0 ? stopAcrossSeam(progress.text, output.text, stops) : undefined;
  if (seam !== undefined) return { progress: { ...next, text: next.text.slice(0, seam) }, done: "stop" };
  // A call that stopped before what it was asked for ended the answer (EOS or a stop sequence).
  if (output.finish_reason === "stop" || output.completion_tokens < asked) return { progress: next, done: "stop" };
  if (next.tokens >= maxTokens) return { progress: next, done: "length" };
  return { progress: next, done: undefined };
}

/**
 * The longest end of `text` that is the start of a stop sequence: a streamed continued job holds
 * it back from its subscribers until the next call's text shows whether the stop completes.
 */
export function stopPrefixAtEnd(text: string, stops: readonly string[]): number {
  let longest = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > longest; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        longest = n;
        break;
      }
    }
  }
  return longest;
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


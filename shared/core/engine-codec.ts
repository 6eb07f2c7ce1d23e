import { codecFor, takesMessages, type ContainerFormat, type CountTokens, type GenerationInput, type GenerationOutput } from "./codecs/index.ts";
import type { GenerationRequest } from "./jobs.ts";
import { promptTextOf } from "./prompt.ts";
import type { ChatTemplateName, Component } from "./routes.ts";

export { finishReasonOf, unexpectedBody, type GenerationInput, type GenerationOutput } from "./codecs/index.ts";

/** What picks a component's request bodies: its format, and whether its engine takes a list (lmi-dynamic). */
export type CodecTarget = Pick<Component, "engine" | "format">;

/**
 * Prompts that can share one dynamic-batch request: LMI applies one set of parameters to the
 * whole list, so only jobs that ask for the same ones go together.
 */
export function samplingKey(input: Omit<GenerationInput, "prompt" | "messages">): string {
  return JSON.stringify([input.max_new_tokens, input.temperature, input.top_p, input.stop, input.seed]);
}

/** A job's sampling parameters: what samplingKey groups by. */
export function samplingOf(request: GenerationRequest): Omit<GenerationInput, "prompt" | "messages"> {
  return { max_new_tokens: request.max_tokens, temperature: request.temperature, top_p: request.top_p, stop: request.stop, seed: request.seed };
}

/**
 * What the engine is asked for one job: its text (messages rendered with the route's chat
 * template) and, for a chat format, its messages as they are, which the container renders with
 * the model's own template.
 */
export function generationInputOf(request: GenerationRequest, chatTemplate: ChatTemplateName, format: ContainerFormat): GenerationInput {
  // A job with a prompt asks a chat format as one user message: a continued call adds the text so far after it.
  const messages = takesMessages(format) ? (request.messages ?? [{ role: "user" as const, content: request.prompt ?? "" }]) : undefined;
  return { prompt: promptTextOf(request, chatTemplate), ...(messages && { messages }), ...samplingOf(request) };
}

/**
 * Request bodies in the component's format (codecs/). A continuous-batching engine takes one
 * prompt per request and batches inside the container; a dynamic-batch engine takes the list in
 * one body, which carries one set of parameters: callers group prompts by samplingKey first.
 */
export function encodeRequests(target: CodecTarget, inputs: readonly GenerationInput[], options: { readonly stream?: boolean } = {}): string[] {
  const list = target.engine === "lmi-dynamic";
  const first = inputs[0];
  if (list && first && inputs.some((p) => samplingKey(p) !== samplingKey(first))) {
    throw new Error("a dynamic batch must share its sampling parameters: group prompts by samplingKey");
  }
  return codecFor(target.format).encode(inputs, { stream: options.stream === true, list });
}

/**
 * Decodes a response body into one output per prompt. A body that is not what the format
 * promises is the model's fault, not the caller's: a ModelRejectedError that says what was wrong.
 */
export function decodeResponse(target: CodecTarget, body: string, expected: number, countTokens: CountTokens): GenerationOutput[] {
  return codecFor(target.format).decode(body, expected, countTokens, { list: target.engine === "lmi-dynamic" });
}

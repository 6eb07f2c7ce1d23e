import { z } from "zod";
import { RetryableError } from "../errors.ts";
import { decodeWith, finishReasonOf, messageOf, parsedJson, ServerSentEvents, unexpectedBody, type StreamEvent } from "./common.ts";
import type { ContainerCodec, CountTokens, GenerationInput, GenerationOutput } from "./types.ts";

/**
 * OpenAI's completions and chat completions bodies, as vLLM and SGLang serve them through
 * /invocations and as every SageMaker endpoint takes chat since 2026. `model` is left out, which
 * the server reads as the model it serves. Streamed: server-sent events, a chunk of new text per
 * decode step, the token counts last (`stream_options.include_usage`), then `data: [DONE]`.
 * Errors: vLLM's `{"object": "error", "message"}` or OpenAI's `{"error": {"message"}}`.
 */
const sampling = (p: GenerationInput) => ({ max_tokens: p.max_new_tokens, temperature: p.temperature, top_p: p.top_p, stop: p.stop, seed: p.seed });
const streaming = (stream: boolean) => (stream ? { stream: true, stream_options: { include_usage: true } } : {});

const usage = z.object({ completion_tokens: z.number().int().nonnegative() });
const openAiError = z.union([
  z.object({ error: z.object({ message: z.string() }) }).transform((e) => e.error.message),
  z.object({ object: z.literal("error"), message: z.string() }).transform((e) => e.message),
]);

/** `usage` counts all choices together: it is one choice's count only when there is one. */
function outputs<T>(choices: readonly T[], used: { completion_tokens: number } | undefined, read: (choice: T) => { text: string; finish: string | null }, countTokens: CountTokens): GenerationOutput[] {
  return choices.map((choice) => {
    const { text, finish } = read(choice);
    return { text, completion_tokens: used && choices.length === 1 ? used.completion_tokens : countTokens(text), finish_reason: finishReasonOf(finish) };
  });
}

/** An event of a stream: its usage, its one choice's new text and finish reason; an error event fails the try (the prompt was fine). */
function streamEvent<T extends z.ZodType<{ choices: readonly unknown[]; usage?: { completion_tokens: number } | null | undefined }>>(data: string, chunk: T, read: (choice: z.infer<T>["choices"][number]) => { text: string; finish: string | null | undefined }): StreamEvent {
  const raw = parsedJson(data, "stream event");
  const failure = openAiError.safeParse(raw);
  if (failure.success) throw new RetryableError("unavailable", `model stream failed: ${failure.data}`);
  const parsed = chunk.safeParse(raw);
  if (!parsed.success) throw unexpectedBody(parsed.error, "stream event");
  const first = parsed.data.choices[0];
  const { text, finish } = first === undefined ? { text: "", finish: undefined } : read(first);
  return { text, finishReason: finish ?? undefined, completionTokens: parsed.data.usage?.completion_tokens };
}

const completion = z.object({ choices: z.array(z.object({ text: z.string(), finish_reason: z.string().nullable() })), usage: usage.optional() });
const completionChunk = z.object({ choices: z.array(z.object({ text: z.string(), finish_reason: z.string().nullish() })), usage: usage.nullish() });

export const openAiCompletionsCodec: ContainerCodec = {
  format: "openai-completions",
  encode: (inputs, { stream }) => inputs.map((p) => JSON.stringify({ prompt: p.prompt, ...sampling(p), ...streaming(stream) })),
  decode(body, expected, countTokens) {
    const schema = completion.transform((c) => outputs(c.choices, c.usage, (choice) => ({ text: choice.text, finish: choice.finish_reason }), countTokens));
    return decodeWith(schema, parsedJson(body, "body"), expected, (o) => o);
  },
  streamDecoder: (countTokens) => new ServerSentEvents(countTokens, (data) => streamEvent(data, completionChunk, (c) => ({ text: c.text, finish: c.finish_reason }))),
  errorMessage: (body) => messageOf(body, [openAiError]),
};

const chatCompletion = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }), finish_reason: z.string().nullable() })),
  usage: usage.optional(),
});
const chatChunk = z.object({
  choices: z.array(z.object({ delta: z.object({ content: z.string().nullish() }), finish_reason: z.string().nullish() })),
  usage: usage.nullish(),
});

/** The messages as the client sent them; a job with a prompt instead asks as one user message. */
const messagesOf = (p: GenerationInput) => p.messages ?? [{ role: "user" as const, content: p.prompt }];
/** vLLM, SGLang and TGI: the chat rendered without a new assistant turn, ending right after the last message's text. */
const continuing = (p: GenerationInput) => (p.continue_final_message ? { continue_final_message: true, add_generation_prompt: false } : {});

export const openAiChatCodec: ContainerCodec = {
  format: "openai-chat",
  encode: (inputs, { stream }) => inputs.map((p) => JSON.stringify({ messages: messagesOf(p), ...sampling(p), ...continuing(p), ...streaming(stream) })),
  decode(body, expected, countTokens) {
    const schema = chatCompletion.transform((c) => outputs(c.choices, c.usage, (choice) => ({ text: choice.message.content ?? "", finish: choice.finish_reason }), countTokens));
    return decodeWith(schema, parsedJson(body, "body"), expected, (o) => o);
  },
  streamDecoder: (countTokens) => new ServerSentEvents(countTokens, (data) => streamEvent(data, chatChunk, (c) => ({ text: c.delta.content ?? "", finish: c.finish_reason }))),
  errorMessage: (body) => messageOf(body, [openAiError]),
};

import { z } from "zod";
import { RetryableError } from "../errors.ts";
import { decodeWith, finishReasonOf, messageOf, parsedJson, ServerSentEvents, unexpectedBody, type StreamEvent } from "./common.ts";
import type { ContainerCodec, CountTokens, GenerationInput, GenerationOutput } from "./types.ts";

/**
 * Hugging Face TGI through SageMaker's /invocations: `{"inputs", "parameters", "stream"?}` →
 * `[{"generated_text", "details": {"finish_reason", "generated_tokens", ...}}]`. TGI refuses a
 * temperature of 0 and a top_p of 1 (both must be strictly inside their ranges): greedy decoding
 * is `do_sample: false` with neither. Streamed: server-sent events, a token each
 * (`{"token": {"text", "special"}, "generated_text": null}`), the last with the whole text and its
 * details; a special token (the end of sequence) adds no text. Errors: `{"error", "error_type"}`
 * (422 validation, 424 generation, 429 overloaded).
 */
function parameters(p: GenerationInput) {
  const sampled = p.temperature !== undefined && p.temperature > 0;
  return {
    max_new_tokens: p.max_new_tokens,
    do_sample: sampled,
    ...(sampled && { temperature: p.temperature }),
    ...(p.top_p !== undefined && p.top_p < 1 && { top_p: p.top_p }),
    stop: typeof p.stop === "string" ? [p.stop] : p.stop,
    seed: p.seed,
    details: true,
  };
}

const details = z.object({ finish_reason: z.string(), generated_tokens: z.number().int().nonnegative() });
const generation = z.object({ generated_text: z.string(), details: details.nullish() });
const tgiError = z.object({ error: z.string(), error_type: z.string().optional() }).transform((e) => e.error);

const toOutput = (countTokens: CountTokens) => (g: z.infer<typeof generation>): GenerationOutput => ({
  text: g.generated_text,
  completion_tokens: g.details?.generated_tokens ?? countTokens(g.generated_text),
  finish_reason: finishReasonOf(g.details?.finish_reason),
});

const streamToken = z.object({
  token: z.object({ text: z.string(), special: z.boolean().optional() }),
  generated_text: z.string().nullish(),
  details: details.nullish(),
});

function streamEvent(data: string): StreamEvent {
  const raw = parsedJson(data, "stream event");
  const failure = tgiError.safeParse(raw);
  if (failure.success) throw new RetryableError("unavailable", `model stream failed: ${failure.data}`);
  const parsed = streamToken.safeParse(raw);
  if (!parsed.success) throw unexpectedBody(parsed.error, "stream event");
  const { token, generated_text, details: last } = parsed.data;
  const end = generated_text !== null && generated_text !== undefined;
  return {
    text: token.special === true ? "" : token.text,
    ...(end && { done: true, wholeText: generated_text, finishReason: last?.finish_reason, completionTokens: last?.generated_tokens }),
  };
}

export const tgiCodec: ContainerCodec = {
  format: "tgi",
  encode: (inputs, { stream }) => inputs.map((p) => JSON.stringify({ inputs: p.prompt, parameters: parameters(p), ...(stream && { stream: true }) })),
  decode(body, expected, countTokens) {
    const raw = parsedJson(body, "body");
    const schema = Array.isArray(raw) ? z.array(generation) : generation.transform((g) => [g]);
    return decodeWith(schema, raw, expected, toOutput(countTokens));
  },
  streamDecoder: (countTokens) => new ServerSentEvents(countTokens, streamEvent),
  errorMessage: (body) => messageOf(body, [tgiError]),
};

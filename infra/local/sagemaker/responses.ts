import type { Generation } from "./generate.ts";
import type { ParsedRequest } from "./request.ts";

/**
 * Answers in the containers' own formats, whole or streamed.
 *
 * LMI (DJL Serving's jsonlines output formatter, as InvokeEndpointWithResponseStream returns it):
 * one line per token, `{"token": {"id": 42, "text": " word"}}`; the line of the last token also
 * has `"generated_text"` and, when the request asked for details, `"details"`. Whole:
 * `{"generated_text", "details"?}`, or a list of them for a list of inputs.
 *
 * vLLM (OpenAI completions): `{"id", "object": "text_completion", "created", "model", "choices":
 * [{"index", "text", "logprobs": null, "finish_reason"}], "usage": {"prompt_tokens",
 * "completion_tokens", "total_tokens"}}`; with `"stream": true`, server-sent events `data: {...}`
 * with each new text, the finish reason on the last, an optional usage event, and `data: [DONE]`.
 */
export type Answer = {
  readonly request: ParsedRequest;
  readonly generations: readonly Generation[];
  /** `cmpl-...`, and the Unix time in seconds, for OpenAI answers. */
  readonly id: string;
  readonly created: number;
};

export function contentTypeOf(request: ParsedRequest, streaming: boolean): string {
  if (request.format === "openai") return request.stream ? "text/event-stream" : "application/json";
  return streaming ? "application/jsonlines" : "application/json";
}

/** The whole answer, for InvokeEndpoint. */
export function wholeBody(answer: Answer): string {
  const { request } = answer;
  if (request.format === "openai") {
    if (request.stream) return streamChunk(answer, request.prompts.map(() => 0), answer.generations.map((g) => g.tokens.length)) + streamEnd(answer);
    return JSON.stringify(completion(answer));
  }
  const results = answer.generations.map((g, i) => ({
    generated_text: g.tokens.join(""),
    ...(request.details && { details: lmiDetails(g, request.promptTokens[i] ?? 0) }),
  }));
  return JSON.stringify(request.single ? results[0] : results);
}

/**
 * What to send once the sequences have `generated` tokens, `sent` of them already sent (updated
 * here). A non-streaming OpenAI answer sends nothing until streamEnd.
 */
export function streamChunk(answer: Answer, sent: number[], generated: readonly number[]): string {
  const { request } = answer;
  if (request.format === "openai" && !request.stream) return "";
  let out = "";
  answer.generations.forEach((g, i) => {
    const from = sent[i] ?? 0;
    const to = Math.min(generated[i] ?? 0, g.tokens.length);
    if (to <= from) return;
    sent[i] = to;
    if (request.format === "openai") {
      const finish = to === g.tokens.length ? g.finishReason : null;
      out += event({ ...header(answer), choices: [{ index: i, text: g.tokens.slice(from, to).join(""), logprobs: null, finish_reason: finish, stop_reason: null }] });
      return;
    }
    for (let t = from; t < to; t++) {
      const line: Record<string, unknown> = { token: { id: g.ids[t], text: g.tokens[t] } };
      if (t === g.tokens.length - 1) {
        line.generated_text = g.tokens.join("");
        if (request.details) line.details = lmiDetails(g, request.promptTokens[i] ?? 0);
      }
      out += `${JSON.stringify(line)}\n`;
    }
  });
  return out;
}

/** What ends a stream once every sequence is done. */
export function streamEnd(answer: Answer): string {
  const { request } = answer;
  if (request.format !== "openai") return "";
  if (!request.stream) return JSON.stringify(completion(answer));
  const usage = request.includeUsage ? event({ ...header(answer), choices: [], usage: usageOf(answer) }) : "";
  return `${usage}data: [DONE]\n\n`;
}

function completion(answer: Answer) {
  return {
    ...header(answer),
    choices: answer.generations.map((g, index) => ({ index, text: g.tokens.join(""), logprobs: null, finish_reason: g.finishReason, stop_reason: null })),
    usage: usageOf(answer),
  };
}

const header = (answer: Answer) => ({ id: answer.id, object: "text_completion", created: answer.created, model: answer.request.model });

function usageOf(answer: Answer) {
  const prompt_tokens = answer.request.promptTokens.reduce((a, b) => a + b, 0);
  const completion_tokens = answer.generations.reduce((sum, g) => sum + g.tokens.length, 0);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

const lmiDetails = (g: Generation, promptTokens: number) => ({ finish_reason: g.finishReason, generated_tokens: g.tokens.length, prompt_tokens: promptTokens });

const event = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;

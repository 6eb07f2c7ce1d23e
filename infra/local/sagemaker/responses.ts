import type { Generation } from "./generate.ts";
import type { ParsedRequest } from "./request.ts";

/**
 * Answers in the containers' own formats, whole or streamed (the request's `format`).
 *
 * lmi (DJL Serving's jsonlines output formatter, as InvokeEndpointWithResponseStream returns it):
 * one line per token, `{"token": {"id": 42, "text": " word"}}`; the line of the last token also
 * has `"generated_text"` and, when the request asked for details, `"details"`. Whole:
 * `{"generated_text", "details"?}`, or a list of them for a list of inputs.
 *
 * tgi: `[{"generated_text", "details"?: {"finish_reason": "length" | "eos_token", "generated_tokens",
 * "seed"}}]`; with `"stream": true`, server-sent events, one per token
 * `{"index", "token": {"id", "text", "logprob", "special"}, "generated_text": null, "details": null}`,
 * the last with the whole text and its details.
 *
 * openai-completions (vLLM): `{"id", "object": "text_completion", "created", "model", "choices":
 * [{"index", "text", "logprobs": null, "finish_reason"}], "usage": {"prompt_tokens",
 * "completion_tokens", "total_tokens"}}`; openai-chat: `"object": "chat.completion"` and choices
 * `{"index", "message": {"role": "assistant", "content"}, "finish_reason"}`. With `"stream": true`,
 * server-sent events `data: {...}` with each new text (chat: `"delta": {"content"}`), the finish
 * reason on the last, an optional usage event, and `data: [DONE]`.
 */
export type Answer = {
  readonly request: ParsedRequest;
  readonly generations: readonly Generation[];
  /** `cmpl-...`, and the Unix time in seconds, for OpenAI answers. */
  readonly id: string;
  readonly created: number;
};

const isOpenAi = (request: ParsedRequest) => request.format === "openai-completions" || request.format === "openai-chat";

export function contentTypeOf(request: ParsedRequest, streaming: boolean): string {
  if (request.format === "lmi") return streaming ? "application/jsonlines" : "application/json";
  return request.stream ? "text/event-stream" : "application/json";
}

/** The whole answer, for InvokeEndpoint. */
export function wholeBody(answer: Answer): string {
  const { request } = answer;
  if (request.stream && request.format !== "lmi") return streamChunk(answer, request.prompts.map(() => 0), answer.generations.map((g) => g.tokens.length)) + streamEnd(answer);
  if (isOpenAi(request)) return JSON.stringify(completion(answer));
  const results = answer.generations.map((g, i) => ({
    generated_text: g.tokens.join(""),
    ...(request.details && { details: request.format === "tgi" ? tgiDetails(g, request.seed) : lmiDetails(g, request.promptTokens[i] ?? 0) }),
  }));
  if (request.format === "tgi") return JSON.stringify(results);
  return JSON.stringify(request.single ? results[0] : results);
}

/**
 * What to send once the sequences have `generated` tokens, `sent` of them already sent (updated
 * here). A non-streaming OpenAI or TGI answer sends nothing until streamEnd.
 */
export function streamChunk(answer: Answer, sent: number[], generated: readonly number[]): string {
  const { request } = answer;
  if (request.format !== "lmi" && !request.stream) return "";
  let out = "";
  answer.generations.forEach((g, i) => {
    const from = sent[i] ?? 0;
    const to = Math.min(generated[i] ?? 0, g.tokens.length);
    if (to <= from) return;
    sent[i] = to;
    const finish = to === g.tokens.length ? g.finishReason : null;
    const text = g.tokens.slice(from, to).join("");
    if (request.format === "openai-completions") out += event({ ...header(answer), choices: [{ index: i, text, logprobs: null, finish_reason: finish, stop_reason: null }] });
    else if (request.format === "openai-chat") out += event({ ...header(answer), choices: [{ index: i, delta: { ...(from === 0 && { role: "assistant" }), content: text }, logprobs: null, finish_reason: finish }] });
    else for (let t = from; t < to; t++) out += request.format === "tgi" ? tgiToken(answer, g, t) : lmiLine(answer, g, i, t);
  });
  return out;
}

/** What ends a stream once every sequence is done. */
export function streamEnd(answer: Answer): string {
  const { request } = answer;
  if (!isOpenAi(request)) return "";
  if (!request.stream) return JSON.stringify(completion(answer));
  const usage = request.includeUsage ? event({ ...header(answer), choices: [], usage: usageOf(answer) }) : "";
  return `${usage}data: [DONE]\n\n`;
}

function lmiLine(answer: Answer, g: Generation, i: number, t: number): string {
  const line: Record<string, unknown> = { token: { id: g.ids[t], text: g.tokens[t] } };
  if (t === g.tokens.length - 1) {
    line.generated_text = g.tokens.join("");
    if (answer.request.details) line.details = lmiDetails(g, answer.request.promptTokens[i] ?? 0);
  }
  return `${JSON.stringify(line)}\n`;
}

function tgiToken(answer: Answer, g: Generation, t: number): string {
  const last = t === g.tokens.length - 1;
  return event({
    index: t + 1,
    token: { id: g.ids[t], text: g.tokens[t], logprob: -0.5, special: false },
    generated_text: last ? g.tokens.join("") : null,
    details: last ? tgiDetails(g, answer.request.seed) : null,
  });
}

function completion(answer: Answer) {
  const chat = answer.request.format === "openai-chat";
  return {
    ...header(answer),
    choices: answer.generations.map((g, index) => {
      const text = g.tokens.join("");
      return chat
        ? { index, message: { role: "assistant", content: text }, logprobs: null, finish_reason: g.finishReason }
        : { index, text, logprobs: null, finish_reason: g.finishReason, stop_reason: null };
    }),
    usage: usageOf(answer),
  };
}

function header(answer: Answer) {
  const chat = answer.request.format === "openai-chat";
  const object = chat ? (answer.request.stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return { id: chat ? answer.id.replace(/^cmpl-/, "chatcmpl-") : answer.id, object, created: answer.created, model: answer.request.model };
}

function usageOf(answer: Answer) {
  const prompt_tokens = answer.request.promptTokens.reduce((a, b) => a + b, 0);
  const completion_tokens = answer.generations.reduce((sum, g) => sum + g.tokens.length, 0);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

const lmiDetails = (g: Generation, promptTokens: number) => ({ finish_reason: g.finishReason, generated_tokens: g.tokens.length, prompt_tokens: promptTokens });
const tgiDetails = (g: Generation, seed: number | undefined) => ({ finish_reason: g.finishReason === "length" ? "length" : "eos_token", generated_tokens: g.tokens.length, seed: seed ?? null });

const event = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;

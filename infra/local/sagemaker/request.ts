import { z } from "zod";
import type { ContainerFormat } from "#shared/core/codecs/index";
import type { ChatMessage } from "#shared/core/prompt";
import type { Component } from "#shared/core/routes";
import type { TokenCounter } from "#shared/core/tokens";

/**
 * Request bodies as the containers take them, in the component's format, checked as their model
 * servers would: a body they cannot use is the model's 400 (TGI's 422), which SageMaker wraps in
 * a ModelError.
 *
 * - lmi (DJL Serving): `{"inputs": "..." | [...], "parameters": {...}}`;
 * - tgi: `{"inputs": "...", "parameters": {...}, "stream"?}`; TGI refuses a temperature of 0 and a top_p of 1;
 * - openai-completions (vLLM, SGLang): `{"model"?, "prompt": "..." | [...], "max_tokens", ...}`;
 * - openai-chat: `{"model"?, "messages": [...], "max_tokens", ...}`, rendered with the model's own
 *   chat template (its family's, `renderChat`) as the container's tokenizer would.
 *
 * The token limits (max_new_tokens or max_tokens) are required although both servers have a
 * default: the emulator is stricter than the real servers so that callers that work against it
 * also work against AWS.
 */
const stop = z.union([z.string(), z.array(z.string())]).optional();
const seed = z.number().int().nonnegative().optional();

const lmiSchema = z.object({
  inputs: z.union([z.string(), z.array(z.string()).min(1)]),
  parameters: z.object({
    max_new_tokens: z.number().int().positive(),
    temperature: z.number().nonnegative().optional(),
    top_p: z.number().gt(0).max(1).optional(),
    seed,
    stop,
    details: z.boolean().optional(),
  }),
});

const openAiSchema = z.object({
  model: z.string().optional(),
  prompt: z.union([z.string(), z.array(z.string()).min(1)]),
  max_tokens: z.number().int().positive(),
  temperature: z.number().nonnegative().optional(),
  top_p: z.number().gt(0).max(1).optional(),
  seed,
  stop,
  n: z.literal(1, "only n = 1 is supported").optional(),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
});

export type ParsedRequest = {
  readonly format: ContainerFormat;
  readonly prompts: readonly string[];
  readonly promptTokens: readonly number[];
  /** LMI: `inputs` was a string, so the answer is one object, not a list. */
  readonly single: boolean;
  readonly maxNewTokens: number;
  readonly seed: number | undefined;
  /** LMI `parameters.details`: answer with finish reason and token counts. */
  readonly details: boolean;
  /** OpenAI's and TGI's `stream`: answer in server-sent events. */
  readonly stream: boolean;
  /** OpenAI `stream_options.include_usage`: end the events with the token counts. */
  readonly includeUsage: boolean;
  /** OpenAI: the model name the answer carries. */
  readonly model: string;
};

export type ParseResult =
  | { readonly ok: true; readonly request: ParsedRequest }
  | { readonly ok: false; readonly status: 400 | 404 | 422; readonly message: string };

const refuse = (message: string, status: 400 | 404 | 422 = 400): ParseResult => ({ ok: false, status, message });

/**
 * @param servedModels the names a vLLM container answers to (its component and the routes it
 * serves); a request may also leave `model` out.
 */
export function parseRequest(
  body: Buffer,
  component: Component,
  model: { readonly counter: TokenCounter; readonly servedModels: readonly string[]; readonly renderChat: (messages: readonly ChatMessage[], continuing: boolean) => string },
): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch (cause) {
    return refuseFor(component, `request body is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  const common = readers[component.format](json, component, model);
  if (!common.ok) return common;
  return checkLimits(common.request, component, model.counter);
}

/** TGI refuses what it cannot use with 422 and "Input validation error: ..." (its validation errors); the others with 400. */
const refuseFor = (component: Component, message: string): ParseResult =>
  component.format === "tgi" ? refuse(`Input validation error: ${message}`, 422) : refuse(message);

type Reader = (json: unknown, component: Component, model: Parameters<typeof parseRequest>[2]) => { ok: true; request: Unchecked } | Extract<ParseResult, { ok: false }>;

const readers: Record<ContainerFormat, Reader> = {
  lmi: (json, component) => fromLmi(json, component),
  tgi: (json) => fromTgi(json),
  "openai-completions": (json, _component, model) => fromOpenAi(json, model.servedModels),
  "openai-chat": (json, component, model) => fromOpenAiChat(json, component, model.servedModels, model.renderChat),
};

type Unchecked = Omit<ParsedRequest, "promptTokens">;

function problems(error: z.ZodError): string {
  return `invalid request: ${error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ")}`;
}

function fromLmi(json: unknown, component: Component): { ok: true; request: Unchecked } | Extract<ParseResult, { ok: false }> {
  const parsed = lmiSchema.safeParse(json);
  if (!parsed.success) return { ok: false, status: 400, message: problems(parsed.error) };
  const { inputs, parameters } = parsed.data;
  if (Array.isArray(inputs) && component.engine === "lmi-rolling") {
    return { ok: false, status: 400, message: "rolling batch takes one prompt per request: send inputs as a string, not a list" };
  }
  return {
    ok: true,
    request: {
      format: "lmi",
      prompts: Array.isArray(inputs) ? inputs : [inputs],
      single: !Array.isArray(inputs),
      maxNewTokens: parameters.max_new_tokens,
      seed: parameters.seed,
      details: parameters.details ?? false,
      stream: false,
      includeUsage: false,
      model: component.name,
    },
  };
}

function fromOpenAi(json: unknown, servedModels: readonly string[]): { ok: true; request: Unchecked } | Extract<ParseResult, { ok: false }> {
  const parsed = openAiSchema.safeParse(json);
  if (!parsed.success) return { ok: false, status: 400, message: problems(parsed.error) };
  const body = parsed.data;
  if (body.model !== undefined && !servedModels.includes(body.model)) {
    return { ok: false, status: 404, message: `The model \`${body.model}\` does not exist.` };
  }
  return {
    ok: true,
    request: {
      format: "openai-completions",
      prompts: Array.isArray(body.prompt) ? body.prompt : [body.prompt],
      single: !Array.isArray(body.prompt),
      maxNewTokens: body.max_tokens,
      seed: body.seed,
      details: false,
      stream: body.stream ?? false,
      includeUsage: body.stream_options?.include_usage ?? false,
      model: body.model ?? servedModels[0] ?? "model",
    },
  };
}

const tgiSchema = z.object({
  inputs: z.string(),
  parameters: z.object({
    max_new_tokens: z.number().int().positive(),
    do_sample: z.boolean().optional(),
    temperature: z.number().gt(0, "`temperature` must be strictly positive").optional(),
    top_p: z.number().gt(0).lt(1, "`top_p` must be > 0.0 and < 1.0").optional(),
    seed,
    stop: z.array(z.string()).optional(),
    details: z.boolean().optional(),
  }),
  stream: z.boolean().optional(),
});

function fromTgi(json: unknown): { ok: true; request: Unchecked } | Extract<ParseResult, { ok: false }> {
  const parsed = tgiSchema.safeParse(json);
  if (!parsed.success) return { ok: false, status: 422, message: `Input validation error: ${problems(parsed.error)}` };
  const { inputs, parameters, stream } = parsed.data;
  return {
    ok: true,
    request: {
      format: "tgi",
      prompts: [inputs],
      single: false,
      maxNewTokens: parameters.max_new_tokens,
      seed: parameters.seed,
      details: parameters.details ?? false,
      stream: stream ?? false,
      includeUsage: false,
      model: "tgi",
    },
  };
}

const chatSchema = openAiSchema.omit({ prompt: true }).extend({
  messages: z.array(z.object({ role: z.enum(["system", "user", "assistant"]), content: z.string() })).min(1),
  add_generation_prompt: z.boolean().optional(),
  continue_final_message: z.boolean().optional(),
});

const TRANSFORMERS_PREFILL_CONFLICT =
  "continue_final_message and add_generation_prompt are not compatible. Use continue_final_message when you want the model to continue the final message, and add_generation_prompt when you want to add a header that will prompt it to start a new assistant message instead.";

/**
 * vLLM (and SGLang) and TGI continue the final message when asked (continue_final_message: the
 * chat rendered without a new turn, core/continuation.ts says where each documents it), vLLM
 * refusing it beside a generation prompt: in its own words when asked for one, in transformers'
 * when the request leaves it at its default (on). LMI's chat schema has no such field: it
 * renders the chat with a new assistant turn whatever the request says.
 */
function fromOpenAiChat(json: unknown, component: Component, servedModels: readonly string[], renderChat: (messages: readonly ChatMessage[], continuing: boolean) => string): { ok: true; request: Unchecked } | Extract<ParseResult, { ok: false }> {
  const parsed = chatSchema.safeParse(json);
  if (!parsed.success) return { ok: false, status: 400, message: problems(parsed.error) };
  const { messages, add_generation_prompt: generationPrompt, continue_final_message: continueFinal, ...rest } = parsed.data;
  const continuing = continueFinal === true && component.engine !== "lmi-rolling";
  // vLLM's request check sees only a generation prompt asked for; left out, it defaults on and transformers' renderer refuses.
  if (continuing && component.engine === "vllm-openai" && generationPrompt === true) {
    return { ok: false, status: 400, message: "Cannot set both `continue_final_message` and `add_generation_prompt` to True." };
  }
  if (continuing && component.engine === "vllm-openai" && generationPrompt === undefined) {
    return { ok: false, status: 400, message: TRANSFORMERS_PREFILL_CONFLICT };
  }
  const asCompletion = fromOpenAi({ ...rest, prompt: renderChat(messages, continuing) }, servedModels);
  return asCompletion.ok ? { ok: true, request: { ...asCompletion.request, format: "openai-chat" } } : asCompletion;
}

/**
 * The component's limits: tokens per prompt and per answer, and what must fit in one copy's KV
 * cache: each sequence for continuous batching, the whole list for a static batch.
 */
function checkLimits(request: Unchecked, component: Component, counter: TokenCounter): ParseResult {
  const { limits } = component;
  if (request.maxNewTokens > limits.max_new_tokens) {
    return refuseFor(component, `max new tokens ${request.maxNewTokens} is over this model's limit of ${limits.max_new_tokens}`);
  }
  const promptTokens = request.prompts.map((p) => counter.countPrompt(p));
  // The engine's own bound is its context: prompt and new tokens together within its max model
  // length (vLLM's max_model_len, TGI's MAX_TOTAL_TOKENS), which infra/sagemaker.cjs sets to
  // max_prompt_tokens + max_new_tokens. A prompt longer than max_prompt_tokens with fewer new
  // tokens fits, as a continued generation's does (core/continuation.ts); batchline holds its
  // callers' prompts to max_prompt_tokens itself.
  const contextTokens = limits.max_prompt_tokens + limits.max_new_tokens;
  const longest = promptTokens.findIndex((n) => n + request.maxNewTokens > contextTokens);
  if (longest >= 0) return refuseFor(component, overContext(component, longest, promptTokens[longest] ?? 0, request.maxNewTokens, contextTokens));
  const reserved = promptTokens.map((n) => n + request.maxNewTokens);
  const oneBatch = component.engine === "lmi-dynamic";
  const needed = oneBatch ? reserved.reduce((a, b) => a + b, 0) : Math.max(...reserved);
  if ((oneBatch && promptTokens.length > limits.max_sequences) || needed > limits.token_budget) {
    return refuseFor(component, 
      `a batch of ${promptTokens.length} inputs needing ${needed} tokens is over this model's limits of ${limits.max_sequences} sequences and ${limits.token_budget} tokens`,
    );
  }
  return { ok: true, request: { ...request, promptTokens } };
}

/** The engine's words for a request past its context: TGI's validation error, or vLLM's (LMI's rolling batch runs vLLM). */
function overContext(component: Component, input: number, promptTokens: number, maxNewTokens: number, contextTokens: number): string {
  if (component.format === "tgi") return `\`inputs\` tokens + \`max_new_tokens\` must be <= ${contextTokens}. Given: ${promptTokens} \`inputs\` tokens and ${maxNewTokens} \`max_new_tokens\``;
  const words = `This model's maximum context length is ${contextTokens} tokens. However, you requested ${promptTokens + maxNewTokens} tokens (${promptTokens} in the messages, ${maxNewTokens} in the completion). Please reduce the length of the messages or completion.`;
  return component.engine === "lmi-dynamic" ? `input ${input}: ${words}` : words;
}

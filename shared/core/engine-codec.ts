import { z } from "zod";
import { ModelRejectedError } from "./errors.ts";
import type { GenerationRequest } from "./jobs.ts";
import { promptTextOf } from "./prompt.ts";
import type { EngineMode, TokenizerName } from "./routes.ts";

/** What one prompt needs from the engine, and what it gives back. */
export type GenerationInput = {
  readonly prompt: string;
  readonly max_new_tokens: number;
  readonly temperature?: number | undefined;
  readonly top_p?: number | undefined;
  readonly stop?: string | readonly string[] | undefined;
  readonly seed?: number | undefined;
};
export type GenerationOutput = { readonly text: string; readonly completion_tokens: number; readonly finish_reason: "length" | "stop" };

/**
 * Prompts that can share one dynamic-batch request: LMI applies one set of parameters to the
 * whole list, so only jobs that ask for the same ones go together.
 */
export function samplingKey(input: Omit<GenerationInput, "prompt">): string {
  return JSON.stringify([input.max_new_tokens, input.temperature, input.top_p, input.stop, input.seed]);
}

/** A job's sampling parameters: what samplingKey groups by. */
export function samplingOf(request: GenerationRequest): Omit<GenerationInput, "prompt"> {
  return { max_new_tokens: request.max_tokens, temperature: request.temperature, top_p: request.top_p, stop: request.stop, seed: request.seed };
}

/** What the engine is asked for one job of a route whose tokenizer is `tokenizer` (its chat template). */
export function generationInputOf(request: GenerationRequest, tokenizer: TokenizerName): GenerationInput {
  return { prompt: promptTextOf(request, tokenizer), ...samplingOf(request) };
}

/**
 * Request bodies in the container's format. A rolling-batch engine takes one prompt per request
 * and batches inside the container; a dynamic-batch engine takes the list in one body. A dynamic
 * batch carries one set of parameters: callers group prompts by samplingKey first. A vLLM engine
 * takes one OpenAI completions body per prompt; `model` is left out, which vLLM reads as the
 * model it serves. A body for InvokeEndpointWithResponseStream (`stream`) is LMI's as it is (LMI
 * streams whatever the body), and vLLM's asks for server-sent events ending with the token counts.
 */
export function encodeRequests(engine: EngineMode, inputs: readonly GenerationInput[], options: { readonly stream?: boolean } = {}): string[] {
  if (engine === "vllm-openai") {
    const streaming = options.stream === true ? { stream: true, stream_options: { include_usage: true } } : {};
    return inputs.map((p) =>
      JSON.stringify({ prompt: p.prompt, max_tokens: p.max_new_tokens, temperature: p.temperature, top_p: p.top_p, stop: p.stop, seed: p.seed, ...streaming }),
    );
  }
  const body = (prompts: string | string[], p: GenerationInput) =>
    JSON.stringify({
      inputs: prompts,
      parameters: {
        max_new_tokens: p.max_new_tokens,
        temperature: p.temperature,
        top_p: p.top_p,
        stop: typeof p.stop === "string" ? [p.stop] : p.stop,
        seed: p.seed,
        details: true,
      },
    });
  if (engine === "lmi-rolling") return inputs.map((p) => body(p.prompt, p));
  const first = inputs[0];
  if (!first) return [];
  if (inputs.some((p) => samplingKey(p) !== samplingKey(first))) {
    throw new Error("a dynamic batch must share its sampling parameters: group prompts by samplingKey");
  }
  return [body(inputs.map((p) => p.prompt), first)];
}

const generationSchema = z.object({
  generated_text: z.string(),
  details: z.object({
    finish_reason: z.string(),
    generated_tokens: z.number().int().nonnegative(),
  }).optional(),
});
type Generation = z.infer<typeof generationSchema>;

/** vLLM's OpenAI completions answer, as the generations it holds. */
const completionSchema = z
  .object({
    choices: z.array(z.object({ text: z.string(), finish_reason: z.string().nullable() })),
    usage: z.object({ completion_tokens: z.number().int().nonnegative() }).optional(),
  })
  .transform((c) =>
    c.choices.map((choice): Generation => ({
      generated_text: choice.text,
      // usage counts all choices together: it is one choice's count only when there is one.
      details: c.usage && c.choices.length === 1 ? { finish_reason: choice.finish_reason ?? "stop", generated_tokens: c.usage.completion_tokens } : undefined,
    })),
  );

/** What the model sent does not have the shape its format promises: the model's fault, said with zod's first issue. */
export function unexpectedBody(error: z.ZodError, what: string): ModelRejectedError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ` : "";
  return new ModelRejectedError(`model returned an unexpected ${what}: ${where}${issue?.message ?? "invalid"}`);
}

/** The two reasons a generation ends, in any engine's words: its length limit, or anything else. */
export const finishReasonOf = (reason: string | null | undefined): GenerationOutput["finish_reason"] => (reason === "length" ? "length" : "stop");

/**
 * Decodes a response body into one output per prompt. A body that is not what the engine
 * format promises is the model's fault, not the caller's: a ModelRejectedError that says what
 * was wrong.
 */
export function decodeResponse(
  engine: EngineMode,
  body: string,
  expected: number,
  countTokens: (text: string) => number,
): GenerationOutput[] {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new ModelRejectedError(`model returned a body that is not JSON: ${body.slice(0, 120)}`);
  }
  const schema =
    engine === "vllm-openai" ? completionSchema : engine === "lmi-rolling" ? generationSchema.transform((g) => [g]) : z.array(generationSchema);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw unexpectedBody(parsed.error, "body");
  if (parsed.data.length !== expected) {
    throw new ModelRejectedError(`model returned ${parsed.data.length} generations for ${expected} prompts`);
  }
  return parsed.data.map((g: Generation) => ({
    text: g.generated_text,
    completion_tokens: g.details?.generated_tokens ?? countTokens(g.generated_text),
    finish_reason: finishReasonOf(g.details?.finish_reason),
  }));
}

import { z } from "zod";
import { ModelRejectedError } from "../errors.ts";
import { cutShort, decodeWith, finishReasonOf, messageOf, parsedJson, unexpectedBody } from "./common.ts";
import type { ContainerCodec, CountTokens, GenerationInput, GenerationOutput, StreamDecoder } from "./types.ts";

/**
 * LMI (DJL Serving): `{"inputs": "..." | [...], "parameters": {...}}`. Its rolling batch takes one
 * prompt a request; its dynamic batch a list, with one set of parameters (callers group prompts by
 * samplingKey first). Streamed, it answers JSON lines (its jsonlines output formatter), a token
 * each, the last also with the whole text and its details. Its errors: `{"code", "type", "message"}`.
 */
const generation = z.object({
  generated_text: z.string(),
  details: z.object({ finish_reason: z.string(), generated_tokens: z.number().int().nonnegative() }).optional(),
});
type Generation = z.infer<typeof generation>;

const toOutput = (countTokens: CountTokens) => (g: Generation): GenerationOutput => ({
  text: g.generated_text,
  completion_tokens: g.details?.generated_tokens ?? countTokens(g.generated_text),
  finish_reason: finishReasonOf(g.details?.finish_reason),
});

function body(inputs: string | string[], p: GenerationInput): string {
  return JSON.stringify({
    inputs,
    parameters: {
      max_new_tokens: p.max_new_tokens,
      temperature: p.temperature,
      top_p: p.top_p,
      stop: typeof p.stop === "string" ? [p.stop] : p.stop,
      seed: p.seed,
      details: true,
    },
  });
}

const djlError = z.object({ code: z.number(), message: z.string() }).transform((e) => e.message);
const plainError = z.object({ error: z.string() }).transform((e) => e.error);

export const lmiCodec: ContainerCodec = {
  format: "lmi",
  encode(inputs, { list }) {
    if (!list) return inputs.map((p) => body(p.prompt, p));
    const first = inputs[0];
    return first ? [body(inputs.map((p) => p.prompt), first)] : [];
  },
  decode(text, expected, countTokens, { list }) {
    // A string `inputs` is answered with one object, a list with a list.
    const schema = list ? z.array(generation) : generation.transform((g) => [g]);
    return decodeWith(schema, parsedJson(text, "body"), expected, toOutput(countTokens));
  },
  streamDecoder: (countTokens) => new LmiLines(countTokens),
  errorMessage: (text) => messageOf(text, [djlError, plainError]),
};

const lmiLine = z.object({
  token: z.object({ text: z.string() }),
  generated_text: z.string().optional(),
  details: z.object({ finish_reason: z.string(), generated_tokens: z.number().int().nonnegative() }).optional(),
});

class LmiLines implements StreamDecoder {
  readonly #countTokens: CountTokens;
  readonly #utf8 = new TextDecoder();
  #partial = "";
  #last: z.infer<typeof lmiLine> | undefined;

  constructor(countTokens: CountTokens) {
    this.#countTokens = countTokens;
  }

  push(bytes: Uint8Array): string[] {
    const lines = (this.#partial + this.#utf8.decode(bytes, { stream: true })).split("\n");
    this.#partial = lines.pop() ?? "";
    return lines.filter((line) => line.trim().length > 0).map((line) => this.#token(line));
  }

  end(): GenerationOutput {
    const rest = this.#partial + this.#utf8.decode();
    this.#partial = "";
    if (rest.trim().length > 0) this.#token(rest);
    const last = this.#last;
    if (last?.generated_text === undefined) throw cutShort();
    return toOutput(this.#countTokens)({ generated_text: last.generated_text, details: last.details });
  }

  #token(line: string): string {
    if (this.#last?.generated_text !== undefined) throw new ModelRejectedError("model sent tokens after its last one");
    const parsed = lmiLine.safeParse(parsedJson(line, "stream line"));
    if (!parsed.success) throw unexpectedBody(parsed.error, "stream line");
    this.#last = parsed.data;
    return parsed.data.token.text;
  }
}

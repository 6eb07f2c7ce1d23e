import { createParser, type EventSourceParser } from "eventsource-parser";
import { z } from "zod";
import { finishReasonOf, unexpectedBody, type GenerationOutput } from "./engine-codec.ts";
import { ModelRejectedError, RetryableError } from "./errors.ts";
import type { EngineMode } from "./routes.ts";

/**
 * Reads one prompt's answer from InvokeEndpointWithResponseStream as its PayloadParts arrive. A part
 * may end anywhere: within a line, an event or a UTF-8 character.
 */
export type StreamDecoder = {
  /** The text of each token the bytes complete, in order. */
  push(bytes: Uint8Array): string[];
  /** The whole generation, once the stream has ended. */
  end(): GenerationOutput;
};

/**
 * A decoder for the engine's stream format: LMI (DJL Serving) sends JSON lines, a token each, the
 * last also with the whole text and its details; vLLM sends OpenAI server-sent events, a chunk of
 * new text per decode step, then the token counts and `data: [DONE]`. A dynamic-batch engine has
 * no stream.
 */
export function createStreamDecoder(engine: EngineMode, countTokens: (text: string) => number): StreamDecoder {
  if (engine === "lmi-rolling") return new LmiLines(countTokens);
  if (engine === "vllm-openai") return new VllmEvents(countTokens);
  throw new ModelRejectedError(`engine ${engine} answers a list of prompts at once and cannot stream`);
}

/** A stream that stopped without an error and without its end: the connection broke, so another try may do. */
const cutShort = () => new RetryableError("unavailable", "model stream ended before its last token");

function parsedJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelRejectedError(`model returned a ${what} that is not JSON: ${text.slice(0, 120)}`);
  }
}

const lmiLine = z.object({
  token: z.object({ text: z.string() }),
  generated_text: z.string().optional(),
  details: z.object({ finish_reason: z.string(), generated_tokens: z.number().int().nonnegative() }).optional(),
});

class LmiLines implements StreamDecoder {
  readonly #countTokens: (text: string) => number;
  readonly #utf8 = new TextDecoder();
  #partial = "";
  #last: z.infer<typeof lmiLine> | undefined;

  constructor(countTokens: (text: string) => number) {
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
    return {
      text: last.generated_text,
      completion_tokens: last.details?.generated_tokens ?? this.#countTokens(last.generated_text),
      finish_reason: finishReasonOf(last.details?.finish_reason),
    };
  }

  #token(line: string): string {
    if (this.#last?.generated_text !== undefined) throw new ModelRejectedError("model sent tokens after its last one");
    const parsed = lmiLine.safeParse(parsedJson(line, "stream line"));
    if (!parsed.success) throw unexpectedBody(parsed.error, "stream line");
    this.#last = parsed.data;
    return parsed.data.token.text;
  }
}

const vllmChunk = z.object({
  choices: z.array(z.object({ text: z.string(), finish_reason: z.string().nullish() })),
  usage: z.object({ completion_tokens: z.number().int().nonnegative() }).nullish(),
});

/** vLLM's error event mid-stream: `{"error": {"message"}}`, or `{"object": "error", "message"}` in older versions. */
const vllmError = z.union([z.object({ error: z.object({ message: z.string() }) }).transform((e) => e.error.message), z.object({ object: z.literal("error"), message: z.string() }).transform((e) => e.message)]);

class VllmEvents implements StreamDecoder {
  readonly #countTokens: (text: string) => number;
  readonly #utf8 = new TextDecoder();
  readonly #parser: EventSourceParser;
  #pending: string[] = [];
  #text = "";
  #finishReason: string | undefined;
  #completionTokens: number | undefined;
  #done = false;

  constructor(countTokens: (text: string) => number) {
    this.#countTokens = countTokens;
    this.#parser = createParser({ onEvent: (event) => this.#event(event.data) });
  }

  push(bytes: Uint8Array): string[] {
    this.#parser.feed(this.#utf8.decode(bytes, { stream: true }));
    const texts = this.#pending;
    this.#pending = [];
    return texts;
  }

  end(): GenerationOutput {
    this.#parser.feed(this.#utf8.decode());
    this.#parser.reset({ consume: true });
    if (!this.#done) throw cutShort();
    return { text: this.#text, completion_tokens: this.#completionTokens ?? this.#countTokens(this.#text), finish_reason: finishReasonOf(this.#finishReason) };
  }

  #event(data: string): void {
    if (data === "[DONE]") {
      this.#done = true;
      return;
    }
    const raw = parsedJson(data, "stream event");
    const failure = vllmError.safeParse(raw);
    // The engine failed after it began: the prompt was fine, so this is worth another try.
    if (failure.success) throw new RetryableError("unavailable", `model stream failed: ${failure.data}`);
    const parsed = vllmChunk.safeParse(raw);
    if (!parsed.success) throw unexpectedBody(parsed.error, "stream event");
    const { choices, usage } = parsed.data;
    if (usage) this.#completionTokens = usage.completion_tokens;
    const choice = choices[0];
    if (!choice) return;
    if (choice.finish_reason) this.#finishReason = choice.finish_reason;
    if (choice.text.length === 0) return;
    this.#text += choice.text;
    this.#pending.push(choice.text);
  }
}

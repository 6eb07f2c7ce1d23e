import { createParser, type EventSourceParser } from "eventsource-parser";
import type { z } from "zod";
import { ModelRejectedError, RetryableError } from "../errors.ts";
import type { CountTokens, GenerationOutput, StreamDecoder } from "./types.ts";

/** The two reasons a generation ends, in any engine's words: its length limit, or anything else (eos_token, stop_sequence, stop). */
export const finishReasonOf = (reason: string | null | undefined): GenerationOutput["finish_reason"] => (reason === "length" ? "length" : "stop");

/** What the model sent does not have the shape its format promises: the model's fault, said with zod's first issue. */
export function unexpectedBody(error: z.ZodError, what: string): ModelRejectedError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ` : "";
  return new ModelRejectedError(`model returned an unexpected ${what}: ${where}${issue?.message ?? "invalid"}`);
}

export function parsedJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelRejectedError(`model returned a ${what} that is not JSON: ${text.slice(0, 120)}`);
  }
}

/** A body (parsed JSON) read by its format's schema into its generations, as many as there were prompts. */
export function decodeWith<T>(schema: z.ZodType<T[]>, raw: unknown, expected: number, toOutput: (generation: T) => GenerationOutput): GenerationOutput[] {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw unexpectedBody(parsed.error, "body");
  if (parsed.data.length !== expected) throw new ModelRejectedError(`model returned ${parsed.data.length} generations for ${expected} prompts`);
  return parsed.data.map(toOutput);
}

/** The message of an error body of one of the given shapes, or undefined. */
export function messageOf(body: string, shapes: readonly z.ZodType<string>[]): string | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return undefined;
  }
  for (const shape of shapes) {
    const parsed = shape.safeParse(raw);
    if (parsed.success) return parsed.data;
  }
  return undefined;
}

/** A stream that stopped without an error and without its end: the connection broke, so another try may do. */
export const cutShort = () => new RetryableError("unavailable", "model stream ended before its last token");

/** What one server-sent event says: new text, the finish reason, the token count, the end, or a failure. */
export type StreamEvent = {
  readonly text?: string | undefined;
  readonly finishReason?: string | undefined;
  readonly completionTokens?: number | undefined;
  /** The event is the stream's last (TGI's, with the whole text) or `[DONE]`. */
  readonly done?: boolean;
  /** The generated text as a whole, where the format sends it at the end (TGI). */
  readonly wholeText?: string | undefined;
};

/**
 * Server-sent events, as vLLM, SGLang, TGI and OpenAI send them; what each event says is the
 * format's (`read`). An error event is thrown from `read` as the format decides.
 */
export class ServerSentEvents implements StreamDecoder {
  readonly #countTokens: CountTokens;
  readonly #read: (data: string) => StreamEvent;
  readonly #utf8 = new TextDecoder();
  readonly #parser: EventSourceParser;
  #pending: string[] = [];
  #text = "";
  #wholeText: string | undefined;
  #finishReason: string | undefined;
  #completionTokens: number | undefined;
  #done = false;

  constructor(countTokens: CountTokens, read: (data: string) => StreamEvent) {
    this.#countTokens = countTokens;
    this.#read = read;
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
    const text = this.#wholeText ?? this.#text;
    return { text, completion_tokens: this.#completionTokens ?? this.#countTokens(text), finish_reason: finishReasonOf(this.#finishReason) };
  }

  #event(data: string): void {
    if (data === "[DONE]") {
      this.#done = true;
      return;
    }
    if (this.#done && this.#wholeText !== undefined) throw new ModelRejectedError("model sent tokens after its last one");
    const event = this.#read(data);
    if (event.completionTokens !== undefined) this.#completionTokens = event.completionTokens;
    if (event.finishReason) this.#finishReason = event.finishReason;
    if (event.wholeText !== undefined) this.#wholeText = event.wholeText;
    if (event.done) this.#done = true;
    if (!event.text) return;
    this.#text += event.text;
    this.#pending.push(event.text);
  }
}

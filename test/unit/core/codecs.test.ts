import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { codecFor, type ContainerFormat, type GenerationInput, type GenerationOutput } from "#shared/core/codecs/index";
import { ModelRejectedError, RetryableError } from "#shared/core/errors";

/**
 * Each container format pinned by its documented shapes (test/fixtures/codecs/*.json, each naming
 * its source): the request batchline sends for one input, the answer whole and streamed, and the
 * container's error body.
 */
type Fixture = {
  readonly request: Record<string, unknown>;
  readonly response: unknown;
  readonly stream: readonly string[];
  readonly error: { readonly status: number; readonly body: unknown };
  readonly stream_error?: string;
};

const fixture = (format: ContainerFormat): Fixture => JSON.parse(readFileSync(new URL(`../../fixtures/codecs/${format}.json`, import.meta.url), "utf8")) as Fixture;
const count = (text: string) => text.split(" ").filter(Boolean).length;

const input: GenerationInput = {
  prompt: "What is deep learning?",
  max_new_tokens: 20,
  temperature: 0.7,
  top_p: 0.9,
  stop: "\n\n",
  seed: 42,
};
const chat: GenerationInput = { ...input, prompt: "<rendered by batchline: never sent>", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "What is deep learning?" }] };

const cases: readonly { format: ContainerFormat; input: GenerationInput; whole: GenerationOutput; streamed: readonly string[]; end: GenerationOutput; error: string }[] = [
  {
    format: "lmi",
    input,
    whole: { text: " Deep learning is a subset of machine learning", completion_tokens: 20, finish_reason: "length" },
    streamed: [" Deep", " learning"],
    end: { text: " Deep learning", completion_tokens: 2, finish_reason: "stop" },
    error: "prediction failure",
  },
  {
    format: "tgi",
    input,
    whole: { text: " Deep learning is a subset of machine learning", completion_tokens: 20, finish_reason: "length" },
    // The end-of-sequence token is special: no text.
    streamed: [" Deep", " learning"],
    end: { text: " Deep learning", completion_tokens: 3, finish_reason: "stop" },
    error: "Input validation error: `temperature` must be strictly positive",
  },
  {
    format: "openai-completions",
    input,
    whole: { text: " Deep learning is a subset of machine learning", completion_tokens: 20, finish_reason: "length" },
    streamed: [" Deep", " learning"],
    end: { text: " Deep learning", completion_tokens: 2, finish_reason: "stop" },
    error: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
  },
  {
    format: "openai-chat",
    input: chat,
    whole: { text: "Deep learning is a subset of machine learning", completion_tokens: 20, finish_reason: "length" },
    streamed: ["Deep", " learning"],
    end: { text: "Deep learning", completion_tokens: 2, finish_reason: "stop" },
    error: "messages: must not be empty",
  },
];

const bytes = (text: string) => new TextEncoder().encode(text);

describe.each(cases)("the $format codec, against its documented shapes", ({ format, input: job, whole, streamed, end, error }) => {
  const codec = codecFor(format);
  const shapes = fixture(format);

  it("sends the documented request body for one prompt", () => {
    const [body] = codec.encode([job], { stream: false, list: false });
    expect(JSON.parse(body ?? "")).toEqual(shapes.request);
  });

  it("reads the documented answer", () => {
    expect(codec.decode(JSON.stringify(shapes.response), 1, count, { list: false })).toEqual([whole]);
  });

  it("reads the documented stream, whole and cut at every byte", () => {
    const stream = shapes.stream.join("");
    for (const cut of [undefined, ...Array.from({ length: bytes(stream).length - 1 }, (_, i) => i + 1)]) {
      const decoder = codec.streamDecoder(count);
      const all = bytes(stream);
      const parts = cut === undefined ? [all] : [all.slice(0, cut), all.slice(cut)];
      expect(parts.flatMap((p) => decoder.push(p)), `cut at ${cut}`).toEqual(streamed);
      expect(decoder.end()).toEqual(end);
    }
  });

  it("takes the container's message out of its error body", () => {
    expect(codec.errorMessage(JSON.stringify(shapes.error.body))).toBe(error);
    expect(codec.errorMessage("upstream connect error")).toBeUndefined();
  });

  it("treats an error event mid-stream as worth another try, and a stream cut short likewise", () => {
    if (shapes.stream_error !== undefined) {
      const decoder = codec.streamDecoder(count);
      expect(() => decoder.push(bytes(shapes.stream_error ?? ""))).toThrow(RetryableError);
    }
    const cutShort = codec.streamDecoder(count);
    cutShort.push(bytes(shapes.stream[0] ?? ""));
    expect(() => cutShort.end()).toThrow(RetryableError);
  });

  it("refuses an answer that is not in the format as the model's fault", () => {
    expect(() => codec.decode(JSON.stringify({ unexpected: true }), 1, count, { list: false })).toThrow(ModelRejectedError);
    expect(() => codec.decode("not json", 1, count, { list: false })).toThrow(ModelRejectedError);
  });
});

describe("format details", () => {
  it("sends chat messages to a chat-format container unrendered, and a prompt as one user message", () => {
    const [body] = codecFor("openai-chat").encode([chat, { ...input, prompt: "Hi" }], { stream: false, list: false });
    expect(JSON.parse(body ?? "").messages).toEqual(chat.messages);
    const [, promptBody] = codecFor("openai-chat").encode([chat, { ...input, prompt: "Hi" }], { stream: false, list: false });
    expect(JSON.parse(promptBody ?? "").messages).toEqual([{ role: "user", content: "Hi" }]);
  });

  it("asks TGI for greedy decoding without the temperature 0 and top_p 1 it refuses", () => {
    const [body] = codecFor("tgi").encode([{ ...input, temperature: 0, top_p: 1 }], { stream: true, list: false });
    expect(JSON.parse(body ?? "")).toEqual({ inputs: input.prompt, parameters: { max_new_tokens: 20, do_sample: false, stop: ["\n\n"], seed: 42, details: true }, stream: true });
  });

  it("asks the OpenAI formats for the token counts at the end of a stream", () => {
    for (const format of ["openai-completions", "openai-chat"] as const) {
      const [body] = codecFor(format).encode([input], { stream: true, list: false });
      expect(JSON.parse(body ?? "")).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    }
  });

  it("sends LMI's dynamic batch as one list and reads the list back", () => {
    const bodies = codecFor("lmi").encode([input, { ...input, prompt: "b" }], { stream: false, list: true });
    expect(bodies).toHaveLength(1);
    expect(JSON.parse(bodies[0] ?? "").inputs).toEqual([input.prompt, "b"]);
    const answer = JSON.stringify([{ generated_text: "x" }, { generated_text: "y z" }]);
    expect(codecFor("lmi").decode(answer, 2, count, { list: true }).map((o) => o.text)).toEqual(["x", "y z"]);
    expect(() => codecFor("lmi").decode(answer, 2, count, { list: false })).toThrow(ModelRejectedError);
  });
});

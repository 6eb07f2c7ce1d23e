import { describe, expect, it } from "vitest";
import { ModelRejectedError, RetryableError } from "#shared/core/errors";
import { createStreamDecoder, type StreamDecoder } from "#shared/core/stream-decoder";
import type { EngineMode } from "#shared/core/routes";
import { codecTarget } from "../../helpers/codec-targets.ts";

const count = (text: string) => text.split(" ").filter(Boolean).length;
const bytes = (text: string) => new TextEncoder().encode(text);

/** Feeds the stream cut at the given byte offsets; the tokens each push gave, and the end. */
function decode(engine: EngineMode, stream: string, cuts: readonly number[] = []) {
  const decoder = createStreamDecoder(codecTarget[engine], count);
  const all = bytes(stream);
  const bounds = [0, ...cuts, all.length];
  const tokens = bounds.slice(1).flatMap((end, i) => decoder.push(all.slice(bounds[i], end)));
  return { tokens, decoder };
}

/** Every way to cut the stream in two: within a line, an event, a field name, a UTF-8 character. */
const everyCut = (stream: string) => Array.from({ length: bytes(stream).length - 1 }, (_, i) => i + 1);

// As the emulator (infra/local/sagemaker/responses.ts) and DJL Serving's jsonlines formatter send them.
const lmiStream = [
  { token: { id: 1, text: "Ça" } },
  { token: { id: 2, text: " va" } },
  { token: { id: 3, text: " 🙂" }, generated_text: "Ça va 🙂", details: { finish_reason: "length", generated_tokens: 3, prompt_tokens: 4 } },
].map((line) => `${JSON.stringify(line)}\n`).join("");

const chunk = (text: string, finish: string | null) =>
  `data: ${JSON.stringify({ id: "cmpl-1", object: "text_completion", created: 1, model: "m", choices: [{ index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null }] })}\n\n`;
const usage = `data: ${JSON.stringify({ id: "cmpl-1", object: "text_completion", created: 1, model: "m", choices: [], usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 } })}\n\n`;
const vllmStream = `${chunk("Ça", null)}${chunk(" va", null)}${chunk(" 🙂", "stop")}${usage}data: [DONE]\n\n`;

describe("createStreamDecoder", () => {
  it.each([
    ["lmi-rolling", lmiStream, "length"],
    ["vllm-openai", vllmStream, "stop"],
  ] as const)("gives %s's tokens in order and its whole answer, however the parts cut the stream", (engine, stream, finishReason) => {
    for (const cut of [undefined, ...everyCut(stream)]) {
      // Act
      const { tokens, decoder } = decode(engine, stream, cut === undefined ? [] : [cut]);

      // Assess
      expect(tokens, `cut at byte ${cut}`).toEqual(["Ça", " va", " 🙂"]);
      expect(decoder.end()).toEqual({ text: "Ça va 🙂", completion_tokens: 3, finish_reason: finishReason });
    }
  });

  it.each([["lmi-rolling", lmiStream], ["vllm-openai", vllmStream]] as const)("gives %s's tokens when every byte comes in a part of its own", (engine, stream) => {
    // Act
    const { tokens, decoder } = decode(engine, stream, everyCut(stream));

    // Assess
    expect(tokens).toEqual(["Ça", " va", " 🙂"]);
    expect(decoder.end().text).toBe("Ça va 🙂");
  });

  it("gives a token as soon as its line or event is complete, not at the next one", () => {
    // Prepare
    const lmi = createStreamDecoder(codecTarget["lmi-rolling"], count);
    const vllm = createStreamDecoder(codecTarget["vllm-openai"], count);

    // Act and assess
    expect(lmi.push(bytes(`${JSON.stringify({ token: { id: 1, text: "a" } })}`))).toEqual([]);
    expect(lmi.push(bytes("\n"))).toEqual(["a"]);
    expect(vllm.push(bytes(chunk("a", null).slice(0, -1)))).toEqual([]);
    expect(vllm.push(bytes("\n"))).toEqual(["a"]);
  });

  it("counts the tokens itself when the engine does not say (LMI without details, vLLM without usage)", () => {
    // Prepare
    const lmi = `${JSON.stringify({ token: { text: "a" } })}\n${JSON.stringify({ token: { text: " b" }, generated_text: "a b" })}\n`;
    const vllm = `${chunk("a", null)}${chunk(" b", "length")}data: [DONE]\n\n`;

    // Act and assess
    expect(decode("lmi-rolling", lmi).decoder.end()).toEqual({ text: "a b", completion_tokens: 2, finish_reason: "stop" });
    expect(decode("vllm-openai", vllm).decoder.end()).toEqual({ text: "a b", completion_tokens: 2, finish_reason: "length" });
  });

  it("takes the last LMI line without a newline after it", () => {
    // Act
    const { tokens, decoder } = decode("lmi-rolling", lmiStream.trimEnd());

    // Assess
    expect(tokens).toEqual(["Ça", " va"]);
    expect(decoder.end().text).toBe("Ça va 🙂");
  });

  it.each([
    ["lmi-rolling", lmiStream.split("\n").slice(0, 2).join("\n")],
    ["vllm-openai", vllmStream.replace("data: [DONE]\n\n", "")],
  ] as const)("calls a %s stream that stops before its end broken, worth another try", (engine, stream) => {
    // Act
    const { decoder } = decode(engine, stream);

    // Assess
    expect(() => decoder.end()).toThrow(new RetryableError("unavailable", "model stream ended before its last token"));
  });

  it("calls vLLM's error event mid-stream a failure worth another try, in both its forms", () => {
    for (const error of [{ error: { message: "engine died", type: "InternalServerError", code: 500 } }, { object: "error", message: "engine died" }]) {
      // Prepare
      const decoder = createStreamDecoder(codecTarget["vllm-openai"], count);

      // Act and assess
      expect(() => decoder.push(bytes(`${chunk("a", null)}data: ${JSON.stringify(error)}\n\n`))).toThrow(new RetryableError("unavailable", "model stream failed: engine died"));
    }
  });

  it.each([
    ["lmi-rolling", "not json\n", "model returned a stream line that is not JSON: not json"],
    ["lmi-rolling", `${JSON.stringify({ generated_text: "x" })}\n`, "model returned an unexpected stream line: token: Invalid input: expected object, received undefined"],
    ["vllm-openai", "data: {oops\n\n", "model returned a stream event that is not JSON: {oops"],
    ["vllm-openai", `data: ${JSON.stringify({ choices: [{ text: 3 }] })}\n\n`, "model returned an unexpected stream event: choices.0.text: Invalid input: expected string, received number"],
  ] as const)("calls a %s stream of the wrong shape the model's fault: %j", (engine, stream, message) => {
    // Prepare
    const decoder: StreamDecoder = createStreamDecoder(codecTarget[engine], count);

    // Act and assess
    expect(() => decoder.push(bytes(stream))).toThrow(new ModelRejectedError(message));
  });

  it("refuses LMI tokens after the last one", () => {
    // Prepare
    const decoder = createStreamDecoder(codecTarget["lmi-rolling"], count);

    // Act and assess
    expect(() => decoder.push(bytes(`${lmiStream}${JSON.stringify({ token: { text: "more" } })}\n`))).toThrow(new ModelRejectedError("model sent tokens after its last one"));
  });

  it("has no stream for a dynamic-batch engine", () => {
    expect(() => createStreamDecoder(codecTarget["lmi-dynamic"], count)).toThrow(ModelRejectedError);
  });
});

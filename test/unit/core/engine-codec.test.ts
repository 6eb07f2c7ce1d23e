import { describe, expect, it } from "vitest";
import { decodeResponse, encodeRequests, samplingKey } from "#shared/core/engine-codec";
import { ModelRejectedError } from "#shared/core/errors";
import { codecTarget } from "../../helpers/codec-targets.ts";

const count = (text: string) => text.split(" ").length;

describe("engine codec", () => {
  it("sends one LMI body per prompt to a rolling-batch engine", () => {
    const bodies = encodeRequests(codecTarget["lmi-rolling"], [{ prompt: "a", max_new_tokens: 3, seed: 7 }, { prompt: "b", max_new_tokens: 5, stop: "\n" }]);
    expect(bodies.map((b) => JSON.parse(b))).toEqual([
      { inputs: "a", parameters: { max_new_tokens: 3, seed: 7, details: true } },
      { inputs: "b", parameters: { max_new_tokens: 5, stop: ["\n"], details: true } },
    ]);
  });

  it("sends the list in one body to a dynamic-batch engine", () => {
    const bodies = encodeRequests(codecTarget["lmi-dynamic"], [{ prompt: "a", max_new_tokens: 5 }, { prompt: "b", max_new_tokens: 5 }]);
    expect(bodies.map((b) => JSON.parse(b))).toEqual([{ inputs: ["a", "b"], parameters: { max_new_tokens: 5, details: true } }]);
  });

  it("refuses a dynamic batch whose prompts ask for different parameters", () => {
    expect(() => encodeRequests(codecTarget["lmi-dynamic"], [{ prompt: "a", max_new_tokens: 3 }, { prompt: "b", max_new_tokens: 5 }])).toThrow(/group prompts by samplingKey/);
        expect(samplingKey({ max_new_tokens: 3 })).not.toBe(samplingKey({ max_new_tokens: 3, temperature: 0.5 }));
  });

  it("decodes token counts from the details, or counts them", () => {
    expect(decodeResponse(codecTarget["lmi-rolling"], JSON.stringify({ generated_text: "x y", details: { finish_reason: "length", generated_tokens: 2 } }), 1, count))
      .toEqual([{ text: "x y", completion_tokens: 2, finish_reason: "length" }]);
    expect(decodeResponse(codecTarget["lmi-dynamic"], JSON.stringify([{ generated_text: "x y z" }, { generated_text: "w" }]), 2, count))
      .toEqual([{ text: "x y z", completion_tokens: 3, finish_reason: "stop" }, { text: "w", completion_tokens: 1, finish_reason: "stop" }]);
  });

  it.each([
    ["not json", "model returned a body that is not JSON: not json"],
    [JSON.stringify({ text: "x" }), "model returned an unexpected body: generated_text: Invalid input: expected string, received undefined"],
    [JSON.stringify([{ generated_text: "x" }]), "model returned an unexpected body: Invalid input: expected object, received array"],
  ])("rejects a rolling response %s as the model's fault", (body, message) => {
    expect(() => decodeResponse(codecTarget["lmi-rolling"], body, 1, count)).toThrow(new ModelRejectedError(message));
  });

  it("sends one OpenAI completions body per prompt to a vLLM engine", () => {
    const bodies = encodeRequests(codecTarget["vllm-openai"], [{ prompt: "a", max_new_tokens: 3, seed: 7, temperature: 0.2 }, { prompt: "b", max_new_tokens: 5, stop: ["\n"] }]);
    expect(bodies.map((b) => JSON.parse(b))).toEqual([
      { prompt: "a", max_tokens: 3, temperature: 0.2, seed: 7 },
      { prompt: "b", max_tokens: 5, stop: ["\n"] },
    ]);
  });

  it("decodes an OpenAI completion with its usage, or counts the tokens", () => {
    const completion = (finish_reason: string, usage?: object) =>
      JSON.stringify({ id: "cmpl-1", object: "text_completion", choices: [{ text: " x y", index: 0, finish_reason }], usage });
    expect(decodeResponse(codecTarget["vllm-openai"], completion("length", { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 }), 1, count))
      .toEqual([{ text: " x y", completion_tokens: 2, finish_reason: "length" }]);
    expect(decodeResponse(codecTarget["vllm-openai"], completion("stop"), 1, count)).toEqual([{ text: " x y", completion_tokens: 3, finish_reason: "stop" }]);
    expect(() => decodeResponse(codecTarget["vllm-openai"], JSON.stringify({ choices: [] }), 1, count)).toThrow("model returned 0 generations for 1 prompts");
    expect(() => decodeResponse(codecTarget["vllm-openai"], JSON.stringify({ generated_text: "x" }), 1, count)).toThrow(ModelRejectedError);
  });

  it("rejects a dynamic response with the wrong number of generations", () => {
    expect(() => decodeResponse(codecTarget["lmi-dynamic"], JSON.stringify([{ generated_text: "x" }]), 2, count)).toThrow("model returned 1 generations for 2 prompts");
  });
});

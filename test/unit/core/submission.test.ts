import { describe, expect, it } from "vitest";
import type { ValidationError } from "#shared/core/errors";
import { checkJob } from "#shared/core/submission";
import { defaultCatalog } from "../../helpers/fakes.ts";
import { validationErrorOf } from "../../helpers/assertions.ts";

const catalog = defaultCatalog();
const now = new Date("2026-11-27T12:00:00Z");
const valid = { model: "llama-2-7b", prompt: "Say hello.", max_tokens: 16 };

function rejection(raw: unknown): ValidationError {
  return validationErrorOf(() => checkJob(raw, catalog, now));
}

describe("checkJob", () => {
  it("accepts a valid job and counts its prompt with the route's tokenizer", () => {
    const checked = checkJob(valid, catalog, now);
    expect(checked.route.name).toBe("llama-2-7b");
    expect(checked.promptText).toBe("Say hello.");
    expect(checked.promptTokens).toBeGreaterThan(2);
  });

  it("renders chat messages with the Llama-2 template", () => {
    const checked = checkJob({ model: "llama-2-7b", max_tokens: 8, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }] }, catalog, now);
    expect(checked.promptText).toBe("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
  });

  it.each([
    [{ ...valid, model: undefined }, "model", "model: is required"],
    [{ ...valid, model: 7 }, "model", "model: must be a string naming a model route"],
    [{ ...valid, model: "gpt-9" }, "model", 'model: unknown model "gpt-9"; known models: llama-2-7b, llama-3-8b, llama-3-1b'],
    [{ ...valid, max_tokens: undefined }, "max_tokens", "max_tokens: is required"],
    [{ ...valid, max_tokens: 1.5 }, "max_tokens", "max_tokens: must be an integer"],
    [{ ...valid, max_tokens: 0 }, "max_tokens", "max_tokens: must be at least 1"],
    [{ ...valid, max_tokens: 4096 }, "max_tokens", "max_tokens: must be at most 2048 for model llama-2-7b"],
    [{ ...valid, temperature: 3 }, "temperature", "temperature: must be between 0 and 2"],
    [{ ...valid, prompt: undefined }, "prompt", "prompt: give exactly one of prompt or messages"],
    [{ ...valid, messages: [{ role: "user", content: "x" }] }, "prompt", "prompt: give exactly one of prompt or messages"],
    [{ ...valid, colour: "blue" }, "colour", "colour: is not a known field"],
    [{ ...valid, deadline: "tomorrow" }, "deadline", "deadline: must be an ISO 8601 date-time"],
    [{ ...valid, deadline: "2026-11-27T11:00:00Z" }, "deadline", "deadline: must be in the future"],
    [{ ...valid, priority: 10 }, "priority", "priority: must be between 0 and 9"],
  ])("rejects %j naming the field", (raw, field, message) => {
    const error = rejection(raw);
    expect(error.field).toBe(field);
    expect(error.message).toBe(message);
    expect(error.status).toBe(400);
  });

  it("rejects a non-object body", () => {
    expect(rejection([1, 2]).message).toBe("body: must be a JSON object");
  });

  it("rejects a prompt over the route's token limit", () => {
    const error = rejection({ ...valid, prompt: "lorem ipsum ".repeat(2000) });
    expect(error.field).toBe("prompt");
    expect(error.message).toMatch(/^prompt: \d+ tokens is over the 3072-token prompt limit of model llama-2-7b$/);
  });

  it("rejects a prompt over the payload limit with 413 before tokenizing it", () => {
    const error = rejection({ ...valid, prompt: "x".repeat(7 * 1024 * 1024) });
    expect(error.status).toBe(413);
    expect(error.message).toMatch(/over the 6291456-byte request limit/);
  });
});

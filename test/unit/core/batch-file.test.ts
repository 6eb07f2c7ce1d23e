import { describe, expect, it } from "vitest";
import { MAX_BATCH_LINES, parseBatchFile } from "#shared/core/batch-file";
import type { ValidationError } from "#shared/core/errors";
import { defaultCatalog } from "../../helpers/fakes.ts";
import { validationErrorOf } from "../../helpers/assertions.ts";

const catalog = defaultCatalog();
const now = new Date("2026-11-27T12:00:00Z");
const line = (custom_id: string, body: object = { model: "llama-2-7b", prompt: "hi", max_tokens: 4 }) => JSON.stringify({ custom_id, body });

function rejection(text: string): ValidationError {
  return validationErrorOf(() => parseBatchFile(text, catalog, now));
}

describe("parseBatchFile", () => {
  it("parses every line, skipping blank ones, keeping line numbers", () => {
    const lines = parseBatchFile(`${line("a")}\n\n${line("b")}\n`, catalog, now);
    expect(lines.map((l) => [l.line, l.custom_id])).toEqual([[1, "a"], [3, "b"]]);
    expect(lines[0]?.job.route.name).toBe("llama-2-7b");
  });

  it("accepts OpenAI's method and url fields", () => {
    const text = JSON.stringify({ custom_id: "x", method: "POST", url: "/v1/jobs", body: { model: "llama-2-7b", prompt: "hi", max_tokens: 1 } });
    expect(parseBatchFile(text, catalog, now)).toHaveLength(1);
  });

  it.each([
    ["", "batch file is empty: send one JSON object per line"],
    [`${line("a")}\n{oops`, "line 2: not valid JSON"],
    [`${line("a")}\n${line("a")}`, 'line 2: custom_id "a" appears twice'],
    [JSON.stringify({ body: {} }), "line 1: custom_id: is required"],
    [JSON.stringify({ custom_id: "a" }), "line 1: body: is required"],
    [line("a", { model: "llama-2-7b", prompt: "hi" }), "line 1: body.max_tokens: is required"],
    [line("a", { model: "nope", prompt: "hi", max_tokens: 1 }), 'line 1: body.model: unknown model "nope"; known models: llama-2-7b, llama-3-8b, llama-3-1b'],
  ])("rejects %j", (text, message) => {
    expect(rejection(text).message).toBe(message);
  });

  it("rejects a file over the line limit with 413", () => {
    const error = rejection(`${line("a")}\n`.repeat(MAX_BATCH_LINES + 1));
    expect(error.status).toBe(413);
  });
});

import { describe, expect, it } from "vitest";
import { tokenCounter } from "#shared/core/tokens";
import { generateText, oneTokenWords } from "#local/sagemaker/generate";

const llama2 = tokenCounter("llama2");

describe("generateText", () => {
  it("draws on words that are one Llama-2 token each", () => {
    // Act
    const multiToken = oneTokenWords.filter((word) => llama2.countCompletion(word) !== 1);

    // Assess
    expect(multiToken).toEqual([]);
    expect(new Set(oneTokenWords).size).toBe(oneTokenWords.length);
    expect(llama2.countCompletion(oneTokenWords.join(" "))).toBe(oneTokenWords.length);
  });

  it.each([1, 7, 512, 2048])("makes exactly %i tokens", (newTokens) => {
    // Act
    const text = generateText("Summarise the history of the Roman empire.", { newTokens, seed: 42 });

    // Assess
    expect(llama2.countCompletion(text)).toBe(newTokens);
  });

  it("makes exact counts for many prompts and seeds", () => {
    // Prepare
    const cases = Array.from({ length: 50 }, (_, i) => ({ prompt: `prompt ${i} ${"x".repeat(i)}`, seed: i * 7919, newTokens: 1 + ((i * 37) % 300) }));

    // Act
    const counts = cases.map((c) => llama2.countCompletion(generateText(c.prompt, c)));

    // Assess
    expect(counts).toEqual(cases.map((c) => c.newTokens));
  });

  it("repeats itself for the same prompt and seed", () => {
    // Act
    const first = generateText("hello", { newTokens: 64, seed: 3 });
    const second = generateText("hello", { newTokens: 64, seed: 3 });

    // Assess
    expect(second).toBe(first);
  });

  it("changes the text with the seed and with the prompt", () => {
    // Act
    const base = generateText("hello", { newTokens: 64, seed: 3 });
    const otherSeed = generateText("hello", { newTokens: 64, seed: 4 });
    const otherPrompt = generateText("hello!", { newTokens: 64, seed: 3 });
    const noSeed = generateText("hello", { newTokens: 64 });

    // Assess
    expect(otherSeed).not.toBe(base);
    expect(otherPrompt).not.toBe(base);
    expect(noSeed).not.toBe(base);
  });

  it("makes no text for no tokens", () => {
    // Act & Assess
    expect(generateText("hello", { newTokens: 0 })).toBe("");
  });
});

import { describe, expect, it } from "vitest";
import { tokenCounter } from "#shared/core/tokens";
import { generate, generateText, oneTokenWords } from "#local/sagemaker/generate";

const llama2 = tokenCounter("llama2");
const llama3 = tokenCounter("llama3");
const tokenizers = [
  { tokenizer: "llama2", counter: llama2 },
  { tokenizer: "llama3", counter: llama3 },
];

describe("generateText", () => {
  it.each(tokenizers)("draws on words that are one $tokenizer token each, alone and after another word", ({ counter }) => {
    // Act
    const multiToken = oneTokenWords.filter((word) => counter.countCompletion(word) !== 1 || counter.countCompletion(`the ${word}`) !== 2);

    // Assess
    expect(multiToken).toEqual([]);
    expect(new Set(oneTokenWords).size).toBe(oneTokenWords.length);
    expect(counter.countCompletion(oneTokenWords.join(" "))).toBe(oneTokenWords.length);
  });

  it.each(tokenizers.flatMap((t) => [1, 7, 512, 2048].map((newTokens) => ({ ...t, newTokens }))))(
    "makes exactly $newTokens $tokenizer tokens",
    ({ counter, newTokens }) => {
      // Act
      const text = generateText("Summarise the history of the Roman empire.", { newTokens, seed: 42 });

      // Assess
      expect(counter.countCompletion(text)).toBe(newTokens);
    },
  );

  it.each(tokenizers)("makes exact $tokenizer counts for many prompts and seeds", ({ counter }) => {
    // Prepare
    const cases = Array.from({ length: 50 }, (_, i) => ({ prompt: `prompt ${i} ${"x".repeat(i)}`, seed: i * 7919, newTokens: 1 + ((i * 37) % 300) }));

    // Act
    const counts = cases.map((c) => counter.countCompletion(generateText(c.prompt, c)));

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

describe("generate with an early-stop distribution", () => {
  const prompts = Array.from({ length: 400 }, (_, i) => `question ${i}`);
  const earlyStop = { medianTokens: 100, sigma: 0.6 };

  it("varies the lengths around the median, never past max_new_tokens, and says stop", () => {
    // Act
    const answers = prompts.map((p) => generate(p, { maxNewTokens: 300, seed: 1, earlyStop }));

    // Assess
    const lengths = answers.map((a) => a.tokens.length).sort((a, b) => a - b);
    const median = lengths[lengths.length / 2] ?? 0;
    expect(median).toBeGreaterThan(85);
    expect(median).toBeLessThan(115);
    expect(new Set(lengths).size).toBeGreaterThan(50);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(300);
    for (const a of answers) expect(a.finishReason).toBe(a.tokens.length < 300 ? "stop" : "length");
    expect(answers.some((a) => a.finishReason === "length")).toBe(true);
  });

  it("gives a prefix of the full answer, the same every time", () => {
    // Act
    const stopped = generate("why?", { maxNewTokens: 2000, seed: 5, earlyStop });
    const again = generate("why?", { maxNewTokens: 2000, seed: 5, earlyStop });
    const full = generate("why?", { maxNewTokens: 2000, seed: 5 });

    // Assess
    expect(again).toEqual(stopped);
    expect(full.tokens.slice(0, stopped.tokens.length)).toEqual(stopped.tokens);
    expect(full.finishReason).toBe("length");
    expect(llama2.countCompletion(stopped.tokens.join(""))).toBe(stopped.tokens.length);
  });
});

describe("tokenCounter", () => {
  it("counts a Llama-3 prompt with its BOS token and a completion without", () => {
    // Act & Assess
    expect(llama3.countPrompt("hello world")).toBe(3);
    expect(llama3.countCompletion("hello world")).toBe(2);
    expect(llama3.countCompletion("")).toBe(0);
  });
});

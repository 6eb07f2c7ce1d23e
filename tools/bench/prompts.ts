import { tokenCounter, type TokenCounter } from "#shared/core/tokens";

/**
 * Prompts that count exactly the tokens a trace asks for, with the route's own counter (the one
 * the submit path, the batcher and the emulator use), BOS included. Several variants per length
 * keep requests from being identical strings.
 */
/** Each is one Llama-2 token after a space (test/unit/bench-trace.test.ts checks it). */
export const WORDS = (
  "the queue holds every request until a worker takes a window of them to the GPU where the model " +
  "reads each prompt and writes its answer one token at a time while the server keeps the batch full"
).split(" ");

const VARIANTS = 8;

export type PromptBook = {
  /** A prompt of exactly `tokens` tokens; `variant` picks one of a few different texts. */
  prompt(tokens: number, variant: number): string;
};

export function promptBook(counter: TokenCounter = tokenCounter("llama2")): PromptBook {
  const made = new Map<string, string>();
  return {
    prompt(tokens, variant) {
      const v = ((variant % VARIANTS) + VARIANTS) % VARIANTS;
      const key = `${tokens}:${v}`;
      let text = made.get(key);
      if (text === undefined) {
        text = exactPrompt(counter, tokens, v);
        made.set(key, text);
      }
      return text;
    },
  };
}

/**
 * BOS and one token per word: `tokens - 1` words. Checked with the counter; should a tokenizer
 * merge differently, the longest run of words that fits (binary search: appending a word never
 * removes a token) is topped up with one-token words ("a").
 */
function exactPrompt(counter: TokenCounter, tokens: number, variant: number): string {
  if (!Number.isInteger(tokens) || tokens < 2) throw new RangeError(`a prompt needs at least 2 tokens (BOS and one more), got ${tokens}`);
  // Each variant starts at another word of the list.
  const words = Array.from({ length: tokens }, (_, i) => WORDS[(variant * 5 + i) % WORDS.length] ?? "a");
  const guess = words.slice(0, tokens - 1).join(" ");
  if (counter.countPrompt(guess) === tokens) return guess;
  const countOf = (n: number) => counter.countPrompt(words.slice(0, n).join(" "));
  let low = 0;
  let high = words.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (countOf(mid) <= tokens) low = mid;
    else high = mid - 1;
  }
  const kept = words.slice(0, low);
  while (counter.countPrompt(kept.join(" ")) < tokens) kept.push("a");
  const text = kept.join(" ");
  if (counter.countPrompt(text) !== tokens) throw new Error(`could not build a prompt of exactly ${tokens} tokens`);
  return text;
}

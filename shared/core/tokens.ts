import llamaTokenizer from "llama-tokenizer-js";
import type { TokenizerName } from "./routes.ts";

/**
 * The one token counter (DESIGN.md wire conventions): the submit path, the batcher's packing and
 * the SageMaker emulator all count with it, so their numbers agree.
 */
export type TokenCounter = {
  /** Tokens the engine processes for a prompt, BOS included. */
  countPrompt(text: string): number;
  /** Tokens of generated text (no BOS). */
  countCompletion(text: string): number;
};

const counters: Record<TokenizerName, TokenCounter> = {
  llama2: {
    countPrompt: (text) => llamaTokenizer.encode(text, true).length,
    countCompletion: (text) => (text.length === 0 ? 0 : llamaTokenizer.encode(text, false).length),
  },
};

export function tokenCounter(tokenizer: TokenizerName): TokenCounter {
  return counters[tokenizer];
}

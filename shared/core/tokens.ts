// Aliased: the Lambda bundles' banner declares its own `createRequire` at the top of the file.
import { createRequire as requireFromFile } from "node:module";
import llamaTokenizer from "llama-tokenizer-js";
import type { TokenizerName } from "./routes.ts";

/**
 * The one token counter (docs/design.md, wire conventions): the submit path, the batcher's
 * packing and the SageMaker emulator all count with it, so their numbers agree.
 */
export type TokenCounter = {
  /** Tokens the engine processes for a prompt, BOS included. */
  countPrompt(text: string): number;
  /** Tokens of generated text (no BOS). */
  countCompletion(text: string): number;
  /**
   * The most UTF-16 code units of text one token of the vocabulary stands for: a text of length n
   * has at least n / maxTokenLength tokens, known without counting them.
   */
  readonly maxTokenLength: number;
};

type Llama3Tokenizer = { encode(text: string, options?: { bos?: boolean; eos?: boolean }): number[] };

let llama3: Llama3Tokenizer | undefined;

/**
 * llama3-tokenizer-js builds its 128k-token vocabulary when it is imported (about 0.4 s and 13 MB),
 * so it is loaded on first use: Llama-2 routes never pay for it. The load is synchronous because
 * token counts are part of synchronous validation (Node 22 require()s the ES module).
 *
 * It is resolved from node_modules at run time, never bundled: bundled, its 3.2 MB went into every
 * function's bundle and source map and cost the embedded stack about 9 s a start (osls offline
 * ready in 60 s instead of 51 s on the 2-core machine). The deployment therefore ships the package
 * beside every function's bundle (`package.patterns` in serverless.yml, which says why not
 * serverless-esbuild's `external`); Node resolves it from the bundle's folder up to the package root.
 */
function llama3Tokenizer(): Llama3Tokenizer {
  if (!llama3) {
    try {
      llama3 = (requireFromFile(import.meta.url)("llama3-tokenizer-js") as { default: Llama3Tokenizer }).default;
    } catch (cause) {
      throw new Error("llama3-tokenizer-js is not installed beside this code: a Llama-3 route needs it (serverless.yml's package.patterns ship it with each function)", { cause });
    }
  }
  return llama3;
}

const counters: Record<TokenizerName, TokenCounter> = {
  llama2: {
    countPrompt: (text) => llamaTokenizer.encode(text, true).length,
    countCompletion: (text) => (text.length === 0 ? 0 : llamaTokenizer.encode(text, false).length),
    // SentencePiece pieces of at most 16 characters ("▁" sixteen times); byte fallback is less.
    maxTokenLength: 16,
  },
  llama3: {
    countPrompt: (text) => llama3Tokenizer().encode(text, { bos: true, eos: false }).length,
    countCompletion: (text) => (text.length === 0 ? 0 : llama3Tokenizer().encode(text, { bos: false, eos: false }).length),
    // Byte-level BPE tokens of at most 128 bytes (128 spaces), and a code unit is at least a byte.
    maxTokenLength: 128,
  },
};

export function tokenCounter(tokenizer: TokenizerName): TokenCounter {
  return counters[tokenizer];
}

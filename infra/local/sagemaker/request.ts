import { z } from "zod";
import type { SequenceShape } from "#shared/core/latency-model";
import type { Component } from "#shared/core/routes";
import type { TokenCounter } from "#shared/core/tokens";
import { fitsOneBatch } from "./engine.ts";

/**
 * The LMI (DJL serving) request body the emulator accepts, checked as the model server would:
 * a body it cannot use is the model's 400, which SageMaker wraps in a ModelError.
 *
 * max_new_tokens is required here although LMI has a default: the emulator is stricter than the
 * real server so that callers that work against it also work against AWS.
 */
const bodySchema = z.object({
  inputs: z.union([z.string(), z.array(z.string()).min(1)]),
  parameters: z.object({
    max_new_tokens: z.number().int().positive(),
    temperature: z.number().nonnegative().optional(),
    top_p: z.number().gt(0).max(1).optional(),
    seed: z.number().int().nonnegative().optional(),
    stop: z.union([z.string(), z.array(z.string())]).optional(),
    details: z.boolean().optional(),
  }),
});

export type LmiRequest = {
  readonly prompts: readonly string[];
  /** `inputs` was a string: answer with one object, not a list. */
  readonly single: boolean;
  readonly maxNewTokens: number;
  readonly seed: number | undefined;
  readonly sequences: readonly SequenceShape[];
};

export type ParsedRequest = { readonly ok: true; readonly request: LmiRequest } | { readonly ok: false; readonly message: string };

export function parseLmiRequest(body: Buffer, component: Component, counter: TokenCounter): ParsedRequest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch (cause) {
    return { ok: false, message: `request body is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}` };
  }
  const parsed = bodySchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`);
    return { ok: false, message: `invalid request: ${problems.join("; ")}` };
  }
  const { inputs, parameters } = parsed.data;
  if (Array.isArray(inputs) && component.engine === "lmi-rolling") {
    return { ok: false, message: "rolling batch takes one prompt per request: send inputs as a string, not a list" };
  }
  const { limits } = component;
  if (parameters.max_new_tokens > limits.max_new_tokens) {
    return { ok: false, message: `max_new_tokens ${parameters.max_new_tokens} is over this model's limit of ${limits.max_new_tokens}` };
  }
  const prompts = Array.isArray(inputs) ? inputs : [inputs];
  const sequences = prompts.map((p) => ({ promptTokens: counter.countPrompt(p), newTokens: parameters.max_new_tokens }));
  const longest = sequences.findIndex((s) => s.promptTokens > limits.max_prompt_tokens);
  if (longest >= 0) {
    return {
      ok: false,
      message: `input ${longest} has ${sequences[longest]?.promptTokens} tokens, over this model's limit of ${limits.max_prompt_tokens} prompt tokens`,
    };
  }
  if (!fitsOneBatch(limits, sequences)) {
    return {
      ok: false,
      message: `a batch of ${sequences.length} inputs is over this model's limits of ${limits.max_sequences} sequences and ${limits.token_budget} tokens`,
    };
  }
  return {
    ok: true,
    request: { prompts, single: !Array.isArray(inputs), maxNewTokens: parameters.max_new_tokens, seed: parameters.seed, sequences },
  };
}

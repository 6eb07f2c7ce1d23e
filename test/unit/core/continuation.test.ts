import { describe, expect, it } from "vitest";
import {
  advance, CALL_HEADROOM, continuationProblem, continues, ITEM_LIMIT_BYTES, needsSeveralCalls, nextCall, nextCallFits, NO_PROGRESS, outputOf, stopAcrossSeam, stopPrefixAtEnd, tokensPerCall, type Progress,
} from "#shared/core/continuation";
import type { GenerationInput } from "#shared/core/engine-codec";
import { demandOn } from "#shared/core/gpu-batch-policy";
import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import type { Component } from "#shared/core/routes";
import { loadRouteCatalog } from "#shared/config";

const catalog = loadRouteCatalog("infra/routes.yml");
const componentNamed = (name: string): Component => {
  const component = catalog.components.get(name);
  if (!component) throw new Error(`no ${name} in infra/routes.yml`);
  return component;
};
const llama31 = componentNamed("llama-3-8b-ic");
const profile = llama31.latency;
const input = (over: Partial<GenerationInput> = {}): GenerationInput => ({ prompt: "Write a long story.", max_new_tokens: 16_000, seed: 3, ...over });
const output = (text: string, tokens: number, finish: "length" | "stop" = "length") => ({ text, completion_tokens: tokens, finish_reason: finish });

describe("tokensPerCall", () => {
  it("plans what a copy at its admission limits generates within the headroom of the invocation limit, after the longest prefill", () => {
    // Prepare
    const context = 6144 + 124_928;
    const slowest = decodeStepMs(profile, llama31.limits.max_sequences, llama31.limits.token_budget);

    // Act
    const perCall = tokensPerCall(profile, llama31, context);

    // Assess
    expect(perCall).toBe(Math.floor((60_000 * CALL_HEADROOM - prefillMs(profile, context)) / slowest));
    // 26.6 ms a step at 256 sequences holding 430k tokens: about 1 690 tokens in 48 s.
    expect(perCall).toBeGreaterThan(1_600);
    expect(perCall).toBeLessThan(1_800);
    // The planned call fits the limit even at the copy's slowest, with its headroom to spare.
    expect(prefillMs(profile, context) + perCall * slowest).toBeLessThanOrEqual(60_000 * CALL_HEADROOM);
  });

  it("plans fewer tokens a call for a longer context, and at least one", () => {
    // Act & Assess
    expect(tokensPerCall(profile, llama31, 131_072)).toBeLessThan(tokensPerCall(profile, llama31, 1_000));
    expect(tokensPerCall(profile, { ...llama31, limits: { ...llama31.limits, max_invocation_seconds: 1 } }, 131_072)).toBe(1);
  });
});

describe("needsSeveralCalls and continues", () => {
  it("runs a job over several calls when its max_tokens pass one call's, or when it has already continued", () => {
    expect(needsSeveralCalls(16_000, 1_690)).toBe(true);
    expect(needsSeveralCalls(1_690, 1_690)).toBe(false);
    expect(needsSeveralCalls(100, 1_690, { ...NO_PROGRESS, calls: 1, tokens: 50, text: "x" })).toBe(true);
  });

  it("continues text formats, and a chat format on the engines that continue an assistant message (vLLM, SGLang, TGI), not on LMI's", () => {
    expect(continues({ format: "openai-completions", engine: "vllm-openai" })).toBe(true);
    expect(continues({ format: "lmi", engine: "lmi-rolling" })).toBe(true);
    expect(continues({ format: "tgi", engine: "tgi" })).toBe(true);
    expect(continues({ format: "openai-chat", engine: "vllm-openai" })).toBe(true);
    expect(continues({ format: "openai-chat", engine: "tgi" })).toBe(true);
    expect(continues({ format: "openai-chat", engine: "lmi-rolling" })).toBe(false);
  });

  it("says why a component that cannot continue must keep max_new_tokens within one call, and lets it when it does", () => {
    // Prepare
    const lmiChat = { ...componentNamed("llama-3-1b-ic"), format: "openai-chat" as const };
    const perCall = tokensPerCall(lmiChat.latency, lmiChat, lmiChat.limits.max_prompt_tokens + 1_000);

    // Act
    const problem = continuationProblem(lmiChat);
    const fits = continuationProblem({ ...lmiChat, limits: { ...lmiChat.limits, max_new_tokens: 1_000 } });

    // Assess
    expect(problem).toMatch(/^format openai-chat on engine lmi-rolling cannot continue a generation over several calls \(LMI's chat completions schema has no continue_final_message\), so max_new_tokens 124928 must fit one 60 s call: at most \d+ at its limits/);
    expect(perCall).toBeGreaterThan(1_000);
    expect(fits).toBeUndefined();
    expect(continuationProblem({ ...lmiChat, engine: "vllm-openai" })).toBeUndefined();
  });
});

describe("a chat format's continued calls", () => {
  it("sends the messages with the text so far as the assistant's message to continue, the prompt job's as one user message", () => {
    // Prepare
    const messages = [{ role: "system" as const, content: "Be brief." }, { role: "user" as const, content: "A story." }];
    const progress: Progress = { text: "Once upon", tokens: 2, calls: 1, extra_prefill_tokens: 0 };

    // Act
    const first = nextCall(input({ messages }), 5, NO_PROGRESS, 3);
    const second = nextCall(input({ messages }), 5, progress, 3);

    // Assess
    expect(first).toEqual(input({ messages, max_new_tokens: 3 }));
    expect(second).toEqual(input({ prompt: "Write a long story.Once upon", messages: [...messages, { role: "assistant", content: "Once upon" }], continue_final_message: true, max_new_tokens: 3 }));
  });
});

describe("a stop sequence across the seam of two calls", () => {
  it("finds a stop that begins in the text so far and ends in the next call's, the earliest over the stop sequences", () => {
    expect(stopAcrossSeam("the END", "ING. More", ["ENDING"])).toBe(4);
    expect(stopAcrossSeam("a b ##", "# c", ["###", "b ###"])).toBe(2);
    // Whole within one call: the engine saw it there.
    expect(stopAcrossSeam("a STOP b", " c", ["STOP"])).toBeUndefined();
    expect(stopAcrossSeam("a b", " STOP", ["STOP"])).toBeUndefined();
    expect(stopAcrossSeam("a ST", "xOP", ["STOP"])).toBeUndefined();
  });

  it("cuts the job's text where the stop begins and ends it as a stop, its tokens those generated", () => {
    // Prepare
    const before = advance(NO_PROGRESS, output("one two ST", 3), 3, 9, ["STOP"]);

    // Act
    const after = advance(before.progress, output("OP three", 2), 3, 9, ["STOP"]);
    const unsplit = advance(before.progress, output("AY three four", 3), 3, 9, ["STOP"]);

    // Assess
    expect(before.done).toBeUndefined();
    expect(after).toEqual({ progress: { text: "one two ", tokens: 5, calls: 2, extra_prefill_tokens: 3 }, done: "stop" });
    expect(unsplit.progress.text).toBe("one two STAY three four");
    expect(unsplit.done).toBeUndefined();
  });

  it("holds back the end of the text that could begin a stop sequence", () => {
    expect(stopPrefixAtEnd("one two ST", ["STOP", "TWO"])).toBe(2);
    expect(stopPrefixAtEnd("one two S", ["STOP", "SIGN"])).toBe(1);
    expect(stopPrefixAtEnd("one two", ["STOP"])).toBe(0);
    expect(stopPrefixAtEnd("xSTOP", ["STOP"])).toBe(0);
  });
});

describe("nextCall and advance", () => {
  it("sends the prompt plus the text so far, asking for what is left up to one call's worth", () => {
    // Prepare
    const progress: Progress = { text: " one two", tokens: 2, calls: 1, extra_prefill_tokens: 0 };

    // Act
    const first = nextCall(input(), 5, NO_PROGRESS, 3);
    const second = nextCall(input(), 5, progress, 3);
    const last = nextCall(input(), 5, { ...progress, tokens: 4 }, 3);

    // Assess
    expect(first).toEqual(input({ max_new_tokens: 3 }));
    expect(second).toEqual(input({ prompt: "Write a long story. one two", max_new_tokens: 3 }));
    expect(last?.max_new_tokens).toBe(1);
    expect(nextCall(input(), 5, { ...progress, tokens: 5 }, 3)).toBeUndefined();
  });

  it("adds each call's text and tokens, and counts the text so far as extra prefill of every call after the first", () => {
    // Act
    const one = advance(NO_PROGRESS, output("a b c", 3), 3, 8);
    const two = advance(one.progress, output(" d e f", 3), 3, 8);
    const three = advance(two.progress, output(" g h", 2), 2, 8);

    // Assess
    expect(one).toEqual({ progress: { text: "a b c", tokens: 3, calls: 1, extra_prefill_tokens: 0 }, done: undefined });
    expect(two).toEqual({ progress: { text: "a b c d e f", tokens: 6, calls: 2, extra_prefill_tokens: 3 }, done: undefined });
    expect(three).toEqual({ progress: { text: "a b c d e f g h", tokens: 8, calls: 3, extra_prefill_tokens: 9 }, done: "length" });
    expect(outputOf(three.progress, "length")).toEqual({ text: "a b c d e f g h", completion_tokens: 8, finish_reason: "length" });
  });

  it("ends the job when a call stops before what it asked for: the model ended the answer", () => {
    // Act
    const eos = advance(NO_PROGRESS, output("a b", 2, "stop"), 3, 8);
    const short = advance(NO_PROGRESS, output("a b", 2), 3, 8);

    // Assess
    expect(eos.done).toBe("stop");
    expect(short.done).toBe("stop");
    expect(eos.progress.tokens).toBe(2);
  });

  it("makes the same calls for the same job, so that a resumed job goes on exactly where its stored progress ends", () => {
    // Prepare: the job run whole, and the same job resumed from its progress after two calls.
    const perCall = 4;
    const run = (from: Progress, calls: number) => {
      let progress = from;
      const asked: GenerationInput[] = [];
      for (let i = 0; i < calls; i++) {
        const call = nextCall(input(), 10, progress, perCall);
        if (!call) break;
        asked.push(call);
        progress = advance(progress, output(` w${i}`.repeat(call.max_new_tokens), call.max_new_tokens), call.max_new_tokens, 10).progress;
      }
      return { asked, progress };
    };

    // Act
    const whole = run(NO_PROGRESS, 10);
    const resumed = run(run(NO_PROGRESS, 2).progress, 10);

    // Assess
    expect(whole.asked.map((c) => c.max_new_tokens)).toEqual([4, 4, 2]);
    expect(resumed.asked).toEqual(whole.asked.slice(2));
    expect(resumed.progress.tokens).toBe(10);
  });
});

describe("nextCallFits", () => {
  it("lets a call run while its text, at the bytes per token so far, still fits the job's item beside its request", () => {
    // Prepare: 5 bytes a token so far.
    const at = (tokens: number): Progress => ({ text: "abcd ".repeat(tokens), tokens, calls: 1, extra_prefill_tokens: 0 });

    // Act & Assess
    expect(nextCallFits(NO_PROGRESS, 1_700, 2_000)).toBe(true);
    expect(nextCallFits(at(70_000), 1_700, 2_000)).toBe(true);
    expect(nextCallFits(at(77_000), 1_700, 2_000)).toBe(false);
    // 77 000 tokens of 5 bytes and a call's 1 700 more pass 400 KiB less the request and the item's other attributes; 76 000 do not.
    expect(77_000 * 5 + 1_700 * 5 + 2_000).toBeGreaterThan(ITEM_LIMIT_BYTES - 16 * 1024);
    expect(nextCallFits(at(76_000), 1_700, 2_000)).toBe(true);
  });
});

describe("demandOn", () => {
  it("counts a job that runs over several calls whole (prompt + max_tokens) on a paged engine, and others as the engine admits them", () => {
    // Prepare
    expect(llama31.kv_admission).toBe("paged");

    // Act
    const long = demandOn({ promptTokens: 100, maxNewTokens: 16_000 }, llama31);
    const short = demandOn({ promptTokens: 100, maxNewTokens: 1_000 }, llama31);
    const chat = demandOn({ promptTokens: 100, maxNewTokens: 16_000 }, { ...llama31, format: "openai-chat" });
    const lmiChat = demandOn({ promptTokens: 100, maxNewTokens: 16_000 }, { ...llama31, format: "openai-chat", engine: "lmi-rolling" });

    // Assess
    expect(long).toEqual({ sequences: 1, tokens: 16_100 });
    expect(short).toEqual({ sequences: 1, tokens: 600 });
    // vLLM's chat continues the assistant's message: the job runs over several calls too.
    expect(chat).toEqual({ sequences: 1, tokens: 16_100 });
    expect(lmiChat).toEqual({ sequences: 1, tokens: 8_100 });
  });
});

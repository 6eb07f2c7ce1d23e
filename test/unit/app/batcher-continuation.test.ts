import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { tokensPerCall } from "#shared/core/continuation";
import type { TokenEvent } from "#shared/core/events";
import type { GenerationInput } from "#shared/core/engine-codec";
import { buildRouteCatalog } from "#shared/core/routes";
import { runBatcher } from "../../helpers/batcher.ts";
import { memoryDeps, subscribeToJob } from "../../helpers/fakes.ts";

// The batcher running a generation longer than one call (core/continuation.ts) on the default
// route (Llama-2-7B, LMI rolling batch), with every port in memory and GPU calls on virtual time.
// 2 048 tokens do not fit one call at the copy's slowest step (25.4 ms at 128 sequences holding
// 112k tokens: about 1 890 tokens in 48 s), so such a job runs as two.
type Deps = ReturnType<typeof memoryDeps>;
const MAX_TOKENS = 2_048;

/** Each call answers after 10 virtual ms per token asked for. */
function timedCalls(deps: Deps, msPerToken = 10): void {
  const invoke = deps.invoker.invoke.bind(deps.invoker);
  deps.invoker.invoke = async (component, inputs, options) => {
    await deps.time.sleep(msPerToken * Math.max(...inputs.map((i) => i.max_new_tokens)));
    return invoke(component, inputs, options);
  };
}

/** Distinct words per call, so that a repeated or dropped call shows in the text. */
function numberedWords(deps: Deps): void {
  let call = 0;
  deps.invoker.behaviour = (input: GenerationInput) => {
    const n = call++;
    return { text: Array.from({ length: input.max_new_tokens }, (_, i) => ` c${n}w${i}`).join(""), completion_tokens: input.max_new_tokens, finish_reason: "length" };
  };
}

async function submitLong(deps: Deps) {
  return (await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "A long story.", max_tokens: MAX_TOKENS })).job;
}

/** The job.token events the notifier posts from now on, in order. */
function tokensPosted(deps: Deps): TokenEvent[] {
  const tokens: TokenEvent[] = [];
  const post = deps.notifier.post.bind(deps.notifier);
  deps.notifier.post = async (connectionId, event) => {
    await post(connectionId, event);
    if (event.type === "job.token") tokens.push(event);
  };
  return tokens;
}

function perCallOf(deps: Deps, promptTokens: number): number {
  const component = deps.catalog.components.get("llama-2-7b-ic");
  if (!component) throw new Error("no llama-2-7b-ic");
  return tokensPerCall(component.latency, component, promptTokens + MAX_TOKENS);
}

describe("the batcher on a generation longer than one call", () => {
  it("runs it as calls of the planned size, each on the prompt plus the text so far, storing the text once per call boundary", async () => {
    // Prepare
    const deps = memoryDeps();
    numberedWords(deps);
    const job = await submitLong(deps);
    const perCall = perCallOf(deps, job.prompt_tokens);

    // Act
    await runBatcher(deps);

    // Assess
    const done = deps.jobs.jobs.get(job.job_id);
    const calls = deps.invoker.calls.map((c) => c.inputs[0]);
    expect(perCall).toBeLessThan(MAX_TOKENS);
    expect(calls.map((c) => c?.max_new_tokens)).toEqual([perCall, MAX_TOKENS - perCall]);
    const firstText = Array.from({ length: perCall }, (_, i) => ` c0w${i}`).join("");
    expect(calls[1]?.prompt).toBe(`A long story.${firstText}`);
    expect(deps.jobs.progressWrites).toEqual([{ jobId: job.job_id, attempt: 1, tokens: perCall }]);
    expect(done).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: MAX_TOKENS, finish_reason: "length" } });
    expect(done?.result?.text).toBe(firstText + Array.from({ length: MAX_TOKENS - perCall }, (_, i) => ` c1w${i}`).join(""));
    expect(done?.breakdown).toMatchObject({ generated_tokens: MAX_TOKENS, attempts: 1, continuation: { calls: 2, extra_prefill_tokens: perCall } });
    // The finished job keeps its text once: in its result, not its progress.
    expect(done?.progress).toBeUndefined();
    expect(deps.queue.requeued).toEqual([]);
  });

  it("streams a stream: true job's text across its calls as one stream, in order, its token count going on from call to call", async () => {
    // Prepare
    const deps = memoryDeps();
    const { job } = await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "A long story.", max_tokens: MAX_TOKENS, stream: true });
    await subscribeToJob(deps, job.job_id, "conn-1");
    const tokens = tokensPosted(deps);

    // Act
    await runBatcher(deps);

    // Assess
    const done = deps.jobs.jobs.get(job.job_id);
    expect(deps.invoker.streamCalls).toHaveLength(2);
    expect(done).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: MAX_TOKENS } });
    expect(tokens.map((t) => t.index)).toEqual(tokens.map((_, i) => i));
    expect(tokens.map((t) => t.text).join("")).toBe(done?.result?.text);
    expect(tokens.at(-1)?.tokens).toBe(MAX_TOKENS);
  });

  it("counts the job's whole prompt + max_tokens in its GPU batch's KV tokens", async () => {
    // Prepare
    const deps = memoryDeps();
    const job = await submitLong(deps);

    // Act
    await runBatcher(deps);

    // Assess
    expect(deps.jobs.jobs.get(job.job_id)?.breakdown?.gpu_batch.kv_tokens).toBe(job.prompt_tokens + MAX_TOKENS);
  });

  it("goes on from the text a killed attempt stored: no token of it asked for again", async () => {
    // Prepare: an attempt that stored its first call's text and died.
    const deps = memoryDeps();
    numberedWords(deps);
    const job = await submitLong(deps);
    const perCall = perCallOf(deps, job.prompt_tokens);
    const stored = { text: " earlier".repeat(perCall), tokens: perCall, calls: 1, extra_prefill_tokens: 0 };
    const claimed = await deps.jobs.claim(job.job_id, { gpu_batch_id: "g0", gpu_batch_size: 1, component: "llama-2-7b-ic" }, deps.time.now());
    expect(await deps.jobs.saveProgress(job.job_id, claimed?.attempt ?? 0, stored, 0)).toBe(true);

    // Act: its message comes back to another batcher.
    await runBatcher(deps);

    // Assess
    const done = deps.jobs.jobs.get(job.job_id);
    expect(deps.invoker.calls.map((c) => c.inputs[0]?.max_new_tokens)).toEqual([MAX_TOKENS - perCall]);
    expect(deps.invoker.calls[0]?.inputs[0]?.prompt).toBe(`A long story.${stored.text}`);
    expect(done).toMatchObject({ status: "SUCCEEDED", attempt: 2, result: { completion_tokens: MAX_TOKENS } });
    expect(done?.result?.text).toBe(stored.text + Array.from({ length: MAX_TOKENS - perCall }, (_, i) => ` c0w${i}`).join(""));
    expect(done?.breakdown?.continuation).toEqual({ calls: 2, extra_prefill_tokens: perCall });
  });

  it("streams a resumed stream: true job from its stored text on, restarted as any retried attempt, with the stored tokens counted", async () => {
    // Prepare
    const deps = memoryDeps();
    const { job } = await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "A long story.", max_tokens: MAX_TOKENS, stream: true });
    await subscribeToJob(deps, job.job_id, "conn-1");
    const perCall = perCallOf(deps, job.prompt_tokens);
    const stored = { text: " earlier".repeat(perCall), tokens: perCall, calls: 1, extra_prefill_tokens: 0 };
    const claimed = await deps.jobs.claim(job.job_id, { gpu_batch_id: "g0", gpu_batch_size: 1, component: "llama-2-7b-ic" }, deps.time.now());
    await deps.jobs.saveProgress(job.job_id, claimed?.attempt ?? 0, stored, 0);
    const tokens = tokensPosted(deps);

    // Act
    await runBatcher(deps);

    // Assess
    const done = deps.jobs.jobs.get(job.job_id);
    expect(deps.invoker.streamCalls).toHaveLength(1);
    expect(tokens.map((t) => t.text).join("")).toBe(done?.result?.text);
    expect(tokens.every((t) => t.attempt === 2)).toBe(true);
    expect(tokens[0]?.restarted).toBe(true);
    expect(tokens.find((t) => t.text.length > 0 && !t.text.startsWith(" earlier"))?.tokens).toBeGreaterThan(perCall);
    expect(tokens.at(-1)?.tokens).toBe(MAX_TOKENS);
  });

  it("hands the job over with its text stored when a next call could outlive the batcher, and the next batcher finishes it", async () => {
    // Prepare: calls of 10 virtual ms a token (about 19 s), a batcher with no top-up time left.
    const deps = memoryDeps();
    timedCalls(deps);
    numberedWords(deps);
    const job = await submitLong(deps);
    const perCall = perCallOf(deps, job.prompt_tokens);

    // Act
    await processDelivery(deps, deps.queue.takeDelivery("llama-2-7b"), { topUpUntil: deps.time.now() });
    const handedOver = deps.jobs.jobs.get(job.job_id);
    await runBatcher(deps);

    // Assess
    expect(handedOver).toMatchObject({ status: "RUNNING", attempt: 1, progress: { tokens: perCall, calls: 1 } });
    expect(deps.queue.requeueDelays).toEqual([0]);
    const done = deps.jobs.jobs.get(job.job_id);
    expect(done).toMatchObject({ status: "SUCCEEDED", attempt: 2, result: { completion_tokens: MAX_TOKENS } });
    expect(deps.invoker.calls.map((c) => c.inputs[0]?.max_new_tokens)).toEqual([perCall, MAX_TOKENS - perCall]);
  });

  it("stops when its progress is refused: a later attempt holds the job, and this batcher writes nothing more", async () => {
    // Prepare: another batcher claims the job while the first call runs.
    const deps = memoryDeps();
    const job = await submitLong(deps);
    const behaviour = deps.invoker.behaviour;
    let stolen = false;
    deps.invoker.behaviour = (input) => {
      if (!stolen) {
        stolen = true;
        void deps.jobs.claim(job.job_id, { gpu_batch_id: "other", gpu_batch_size: 1, component: "llama-2-7b-ic" }, deps.time.now());
      }
      return behaviour(input);
    };

    // Act
    await runBatcher(deps);

    // Assess
    expect(deps.invoker.calls).toHaveLength(1);
    expect(deps.jobs.progressWrites).toEqual([]);
    expect(deps.jobs.jobs.get(job.job_id)).toMatchObject({ status: "RUNNING", attempt: 2 });
    expect(deps.jobs.finishes).toEqual([]);
  });

  it("continues a chat job on a vLLM chat-format component: its messages with the text so far as the assistant's message to continue", async () => {
    // Prepare: Llama-3.1-8B's vLLM called in the chat completions format; 2 000 tokens take two calls there.
    const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
    raw.components["llama-3-8b-ic"].format = "openai-chat";
    const deps = memoryDeps(buildRouteCatalog(raw));
    numberedWords(deps);
    const messages = [{ role: "user" as const, content: "A long story." }];
    const { job } = await submitJob(deps, "acme", { model: "llama-3-8b", messages, max_tokens: 2_000 });

    // Act
    await processDelivery(deps, deps.queue.takeDelivery("llama-3-8b"), { topUpUntil: new Date(deps.time.nowMs + 60_000) });

    // Assess
    const [first, second] = deps.invoker.calls.map((c) => c.inputs[0]);
    const firstText = Array.from({ length: first?.max_new_tokens ?? 0 }, (_, i) => ` c0w${i}`).join("");
    expect(deps.invoker.calls).toHaveLength(2);
    expect(first?.messages).toEqual(messages);
    expect(first?.continue_final_message).toBeUndefined();
    expect(second?.messages).toEqual([...messages, { role: "assistant", content: firstText }]);
    expect(second?.continue_final_message).toBe(true);
    expect(deps.jobs.jobs.get(job.job_id)).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: 2_000 } });
  });

  it("cuts the text at a stop sequence the seam between two calls split, ends the job there, and streams nothing of the stop", async () => {
    // Prepare: the first call ends in "EN", the second begins with "D": the stop "END" spans the seam.
    const deps = memoryDeps();
    let call = 0;
    deps.invoker.behaviour = (input) => {
      const words = Array.from({ length: input.max_new_tokens - 1 }, (_, i) => ` c${call}w${i}`).join("");
      const text = call++ === 0 ? `${words} EN` : `D${words}`;
      return { text, completion_tokens: input.max_new_tokens, finish_reason: "length" };
    };
    const { job } = await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "A long story.", max_tokens: MAX_TOKENS, stop: ["END"], stream: true });
    await subscribeToJob(deps, job.job_id, "conn-1");
    const tokens = tokensPosted(deps);
    const perCall = perCallOf(deps, job.prompt_tokens);

    // Act
    await runBatcher(deps);

    // Assess
    const done = deps.jobs.jobs.get(job.job_id);
    const firstWords = Array.from({ length: perCall - 1 }, (_, i) => ` c0w${i}`).join("");
    expect(deps.invoker.streamCalls).toHaveLength(2);
    expect(done).toMatchObject({ status: "SUCCEEDED", result: { text: `${firstWords} `, finish_reason: "stop", completion_tokens: MAX_TOKENS } });
    expect(tokens.map((t) => t.text).join("")).toBe(done?.result?.text);
  });
});

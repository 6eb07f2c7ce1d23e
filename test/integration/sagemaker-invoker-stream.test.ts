import { describe, expect, it } from "vitest";
import { SageMakerInvoker } from "#shared/aws/sagemaker-invoker";
import type { GenerationInput } from "#shared/core/engine-codec";
import { ModelRejectedError, RetryableError } from "#shared/core/errors";
import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import type { Component } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { componentOf, control, emulatorForTests, routesCatalog, withTestComponents } from "../helpers/sagemaker.ts";

/**
 * SageMakerInvoker.invokeStream against the SageMaker emulator through the SDK: both stream
 * formats (LMI jsonlines, vLLM server-sent events) and the errors a stream meets, translated.
 */
const routes = routesCatalog();
const rolling = componentOf(routes, "llama-2-7b-ic");
const vllm = componentOf(routes, "llama-3-8b-ic");
const { catalog, added } = withTestComponents(routes, rolling, {
  "breaking-lmi-test": {},
  "breaking-vllm-test": { engine: "vllm-openai" },
  "impatient-test": { limits: { ...rolling.limits, max_invocation_seconds: 1 } },
  "dynamic-test": { engine: "lmi-dynamic" },
});
const test = (name: string): Component => {
  const component = added[name];
  if (!component) throw new Error(`no test component ${name}`);
  return component;
};
const input = (prompt: string, maxNewTokens: number): GenerationInput => ({ prompt, max_new_tokens: maxNewTokens, seed: 11 });

type Streamed = { tokens: { text: string; atMs: number }[]; output?: Awaited<ReturnType<SageMakerInvoker["invokeStream"]>>; error?: unknown };

async function stream(invoker: SageMakerInvoker, component: Component, request: GenerationInput): Promise<Streamed> {
  const started = performance.now();
  const result: Streamed = { tokens: [] };
  try {
    result.output = await invoker.invokeStream(component, request, (text) => result.tokens.push({ text, atMs: performance.now() - started }));
  } catch (error) {
    result.error = error;
  }
  return result;
}

describe("SageMakerInvoker.invokeStream in real time (time scale 1)", () => {
  const env = emulatorForTests({ catalog, timeScale: 1 });
  const invoker = () => new SageMakerInvoker({ client: env.sagemaker, catalog });

  it("gives an LMI engine's tokens as it makes them, the first after the prefill and long before the last", async () => {
    // Prepare
    const prompt = "Tell me about streams.";
    const promptTokens = tokenCounter("llama2").countPrompt(prompt);

    // Act
    const { tokens, output, error } = await stream(invoker(), rolling, input(prompt, 60));

    // Assess
    expect(error).toBeUndefined();
    expect(output).toMatchObject({ completion_tokens: 60, finish_reason: "length" });
    expect(tokens).toHaveLength(60);
    expect(tokens.map((t) => t.text).join("")).toBe(output?.text);
    // Lower bounds from the call's start only: a loaded machine delivers late, never early, so
    // the gap between the first and last arrival may shrink but neither bound can be beaten.
    const decodeMs = Array.from({ length: 59 }, (_, i) => decodeStepMs(rolling.latency, 1, promptTokens + i + 1)).reduce((a, b) => a + b, 0);
    expect(tokens[0]?.atMs).toBeGreaterThanOrEqual(prefillMs(rolling.latency, promptTokens));
    expect(tokens.at(-1)?.atMs).toBeGreaterThanOrEqual(prefillMs(rolling.latency, promptTokens) + decodeMs);
    expect(new Set(tokens.map((t) => Math.round(t.atMs))).size).toBeGreaterThan(30);
  });

  it("gives a vLLM engine's tokens from its server-sent events, and its count from the usage event", async () => {
    // Act
    const { tokens, output, error } = await stream(invoker(), vllm, input("Go.", 12));

    // Assess
    expect(error).toBeUndefined();
    expect(output).toMatchObject({ completion_tokens: 12, finish_reason: "length" });
    expect(tokens).toHaveLength(12);
    expect(tokens.map((t) => t.text).join("")).toBe(output?.text);
    expect(new Set(tokens.map((t) => Math.round(t.atMs))).size).toBeGreaterThan(6);
  });
});

describe("SageMakerInvoker.invokeStream's errors", () => {
  const env = emulatorForTests({ catalog, timeScale: 20 });
  const invoker = () => new SageMakerInvoker({ client: env.sagemaker, catalog });

  it.each(["breaking-lmi-test", "breaking-vllm-test"])("rejects a %s stream that breaks halfway as worth another try, after the tokens before the break", async (name) => {
    // Prepare
    await control(env.emulator, "POST", "/_emulator/faults", { stream_error_fraction: 1, components: [name] });

    // Act
    const { tokens, output, error } = await stream(invoker(), test(name), input("x", 10));
    await control(env.emulator, "DELETE", "/_emulator/faults");

    // Assess
    expect(output).toBeUndefined();
    expect(tokens).toHaveLength(5);
    expect(error).toBeInstanceOf(RetryableError);
    expect(error).toMatchObject({ code: "unavailable", retryable: true, message: expect.stringContaining("model stream failed (StreamBroken)") });
  });

  it("rejects a stream that runs past the invocation limit as worth another try", async () => {
    // Act: 512 tokens take about 3 simulated seconds; the component allows 1.
    const { tokens, error } = await stream(invoker(), test("impatient-test"), input("x", 512));

    // Assess
    expect(tokens.length).toBeGreaterThan(100);
    expect(error).toBeInstanceOf(RetryableError);
    expect(error).toMatchObject({ message: expect.stringContaining("ModelInvocationTimeExceeded") });
    // SageMaker's own words for a stream cut at the limit.
    expect(error).toMatchObject({ message: expect.stringContaining("did not complete sending the inference response in the allotted time") });
  });

  it("translates an error before the first byte as InvokeEndpoint's: a prompt over the limit is the model's refusal", async () => {
    // Act
    const { tokens, error } = await stream(invoker(), rolling, input("7".repeat(rolling.limits.max_prompt_tokens + rolling.limits.max_new_tokens + 10), 4));

    // Assess
    expect(tokens).toEqual([]);
    expect(error).toBeInstanceOf(ModelRejectedError);
    expect(String((error as Error).message)).toContain(`This model's maximum context length is ${rolling.limits.max_prompt_tokens + rolling.limits.max_new_tokens} tokens.`);
  });

  it("refuses to stream from a dynamic-batch engine without calling it", async () => {
    // Act
    const { error } = await stream(invoker(), test("dynamic-test"), input("x", 4));

    // Assess
    expect(error).toBeInstanceOf(ModelRejectedError);
    expect(String((error as Error).message)).toMatch(/lmi-dynamic .* cannot stream/);
  });
});

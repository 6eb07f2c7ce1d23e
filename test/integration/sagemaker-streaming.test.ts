import { ModelError, ModelStreamError, ValidationError, type SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { describe, expect, it } from "vitest";
import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import type { Component } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { caught, componentOf, control, emulatorForTests, routesCatalog, streamCommand, withTestComponents } from "../helpers/sagemaker.ts";

/**
 * InvokeEndpointWithResponseStream through the SDK: tokens arrive as PayloadPart events at the
 * simulated iteration cadence, and errors mid-stream surface as ModelStreamError.
 */
const routes = routesCatalog();
const rolling = componentOf(routes, "llama-2-7b-ic");
const vllm = componentOf(routes, "llama-3-8b-ic");
const { catalog, added } = withTestComponents(routes, rolling, {
  "dynamic-test": { engine: "lmi-dynamic" },
  "impatient-test": { limits: { ...rolling.limits, max_invocation_seconds: 1 } },
  "breaking-test": {},
});
const test = (name: string): Component => added[name] ?? rolling;

type Part = { text: string; atMs: number };

/** Reads a stream to its end, or to the error the SDK throws: each PayloadPart's text and arrival time. */
async function readStream(sagemaker: SageMakerRuntimeClient, component: Component, body: unknown) {
  const started = performance.now();
  const out = await sagemaker.send(streamCommand(component, body));
  const parts: Part[] = [];
  let error: (Error & Record<string, unknown>) | undefined;
  try {
    for await (const event of out.Body ?? []) {
      if (event.PayloadPart?.Bytes) parts.push({ text: new TextDecoder().decode(event.PayloadPart.Bytes), atMs: performance.now() - started });
    }
  } catch (thrown) {
    error = thrown as Error & Record<string, unknown>;
  }
  return { out, parts, error, lines: parts.flatMap((p) => p.text.split("\n").filter(Boolean)) };
}

describe("response streaming in real time (time scale 1)", () => {
  const env = emulatorForTests({ catalog, timeScale: 1 });

  it("delivers LMI tokens one by one at the GPU's cadence: first token after the prefill, then one per decode step", async () => {
    // Prepare
    const prompt = "Tell me about streams.";
    const tokens = 40;
    const profile = rolling.latency;
    const promptTokens = tokenCounter("llama2").countPrompt(prompt);
    const decodeMs = Array.from({ length: tokens - 1 }, (_, i) => decodeStepMs(profile, 1, promptTokens + i + 1)).reduce((a, b) => a + b, 0);

    // Act
    const { out, parts, lines, error } = await readStream(env.sagemaker, rolling, { inputs: prompt, parameters: { max_new_tokens: tokens, details: true } });

    // Assess: the LMI jsonlines format, a token a line, the last with the whole text.
    expect(error).toBeUndefined();
    expect(out.ContentType).toBe("application/jsonlines");
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed).toHaveLength(tokens);
    expect(parsed[0]).toEqual({ token: { id: expect.any(Number), text: expect.any(String) } });
    expect(parsed.at(-1)).toMatchObject({ generated_text: parsed.map((p) => p.token.text).join(""), details: { finish_reason: "length", generated_tokens: tokens } });
    // Incremental, at the GPU's pace: the first token no sooner than the prefill, the last no
    // sooner than the prefill and every decode step, and the tokens in between spread out.
    expect(parts[0]?.atMs).toBeGreaterThanOrEqual(prefillMs(profile, promptTokens));
    expect(parts.at(-1)?.atMs).toBeGreaterThanOrEqual(prefillMs(profile, promptTokens) + decodeMs);
    expect(new Set(parts.map((p) => Math.round(p.atMs))).size).toBeGreaterThan(tokens / 2);
  });

  it("streams vLLM's OpenAI server-sent events when the body asks to stream", async () => {
    // Act
    const { out, lines, error } = await readStream(env.sagemaker, vllm, { prompt: "Go.", max_tokens: 6, stream: true });

    // Assess
    expect(error).toBeUndefined();
    expect(out.ContentType).toBe("text/event-stream");
    expect(lines.at(-1)).toBe("data: [DONE]");
    const chunks = lines.slice(0, -1).map((l) => JSON.parse(l.replace(/^data: /, "")));
    expect(chunks).toHaveLength(6);
    expect(chunks.map((c) => c.choices[0].finish_reason)).toEqual([null, null, null, null, null, "length"]);
    expect(chunks[0]).toMatchObject({ object: "text_completion", model: "llama-3-8b-ic", choices: [{ index: 0, logprobs: null }] });
  });
});

describe("response streaming errors", () => {
  const env = emulatorForTests({ catalog, timeScale: 20 });

  it("a stream that breaks halfway throws ModelStreamError (StreamBroken) from the SDK's iterator, after the tokens before it", async () => {
    // Prepare
    const breaking = test("breaking-test");
    await control(env.emulator, "POST", "/_emulator/faults", { stream_error_fraction: 1, components: [breaking.name] });

    // Act
    const { lines, error } = await readStream(env.sagemaker, breaking, { inputs: "x", parameters: { max_new_tokens: 10 } });

    // Assess
    expect(lines).toHaveLength(5);
    expect(error).toBeInstanceOf(ModelStreamError);
    expect(error?.ErrorCode).toBe("StreamBroken");
    await control(env.emulator, "DELETE", "/_emulator/faults");
  });

  it("a stream that runs past the invocation limit ends with ModelStreamError (ModelInvocationTimeExceeded)", async () => {
    // Act: 512 tokens take about 3 simulated seconds; the component allows 1.
    const { lines, error } = await readStream(env.sagemaker, test("impatient-test"), { inputs: "x", parameters: { max_new_tokens: 512 } });

    // Assess
    expect(lines.length).toBeGreaterThan(100);
    expect(lines.length).toBeLessThan(512);
    expect(error).toBeInstanceOf(ModelStreamError);
    expect(error?.ErrorCode).toBe("ModelInvocationTimeExceeded");
  });

  it("an error before the first byte is thrown by send(), as for InvokeEndpoint", async () => {
    // Act
    const unknown = await caught(env.sagemaker.send(streamCommand({ ...rolling, name: "ghost-ic" }, { inputs: "x", parameters: { max_new_tokens: 1 } })));
    const dynamic = await caught(env.sagemaker.send(streamCommand(test("dynamic-test"), { inputs: ["x"], parameters: { max_new_tokens: 1 } })));

    // Assess
    expect(unknown).toBeInstanceOf(ValidationError);
    expect(dynamic).toBeInstanceOf(ModelError);
    expect(dynamic.OriginalMessage).toMatch(/streaming needs a rolling-batch engine/);
  });
});

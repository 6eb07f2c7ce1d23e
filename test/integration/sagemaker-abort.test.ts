import { describe, expect, it } from "vitest";
import type { Component } from "#shared/core/routes";
import type { EmulatorStats } from "#local/sagemaker/server";
import { pollUntil } from "../helpers/local-aws.ts";
import { caught, componentOf, emulatorForTests, invokeCommand, routesCatalog, streamCommand } from "../helpers/sagemaker.ts";

const catalog = routesCatalog();
const vllm = componentOf(catalog, "llama-3-8b-ic");
const lmi = componentOf(catalog, "llama-2-7b-ic");

const copyOf = (stats: EmulatorStats, component: Component) => {
  const copy = stats.components.find((c) => c.component === component.name)?.copies[0];
  if (!copy) throw new Error(`no copy of ${component.name}`);
  return copy;
};

// What the container behind SageMaker does with a call whose caller gives up (an AbortSignal in
// the SDK closes the connection): shared/core/client-abort.ts says which engine stops.
describe("SageMaker emulator: a call its caller aborts", () => {
  const env = emulatorForTests({ catalog, timeScale: 20 });

  /** Starts a long call, waits until the copy runs it, aborts it; the copy's stats before the abort, and the call's error. */
  async function abortWhileRunning(component: Component, body: unknown) {
    const controller = new AbortController();
    const call = caught(env.sagemaker.send(invokeCommand(component, body), { abortSignal: controller.signal }));
    const running = await pollUntil(async () => {
      const copy = copyOf(env.emulator.stats(), component);
      return copy.runningSequences === 1 && copy.tokensGenerated > 0 ? copy : undefined;
    }, `${component.name} running the call`);
    controller.abort();
    return { running, error: await call };
  }

  it("stops a vLLM request at once: its sequence and KV cache are free, and it makes no more tokens", async () => {
    // Act
    const { running, error } = await abortWhileRunning(vllm, { prompt: "Tell me a long story.", max_tokens: 2000 });
    const freed = await pollUntil(async () => {
      const copy = copyOf(env.emulator.stats(), vllm);
      return copy.runningSequences === 0 ? copy : undefined;
    }, "the aborted sequence to leave the copy");

    // Assess
    expect(error.name).toBe("AbortError");
    expect(running.kvCacheTokens.now).toBeGreaterThan(0);
    expect(freed).toMatchObject({ abandoned: 1, concurrentRequests: 0, kvCacheTokens: expect.objectContaining({ now: 0 }) });
    expect(freed.tokensGenerated).toBeLessThan(2000);
  });

  it("stops a vLLM response stream its caller abandons after its first tokens", async () => {
    // Prepare
    const controller = new AbortController();
    const before = copyOf(env.emulator.stats(), vllm);
    const out = await env.sagemaker.send(streamCommand(vllm, { prompt: "Stream a long story.", max_tokens: 2000, stream: true }), { abortSignal: controller.signal });

    // Act
    const reading = caught(
      (async () => {
        for await (const event of out.Body ?? []) if (event.PayloadPart) controller.abort();
      })(),
    );
    // The SDK ends the stream's iterator with an error of its own when the signal aborts it.
    const error = await reading;
    const freed = await pollUntil(async () => {
      const copy = copyOf(env.emulator.stats(), vllm);
      return copy.abandoned === before.abandoned + 1 ? copy : undefined;
    }, "the abandoned stream's sequence to leave the copy");

    // Assess
    expect(error).toBeInstanceOf(Error);
    expect(freed).toMatchObject({ runningSequences: 0, concurrentRequests: 0 });
    expect(freed.tokensGenerated - before.tokensGenerated).toBeLessThan(2000);
  });

  it("lets an LMI request run to its last token, as DJL Serving does once a request has started", async () => {
    // Act
    const { error } = await abortWhileRunning(lmi, { inputs: "Tell me a long story.", parameters: { max_new_tokens: 300 } });
    const finished = await pollUntil(async () => {
      const copy = copyOf(env.emulator.stats(), lmi);
      return copy.concurrentRequests === 0 ? copy : undefined;
    }, "the abandoned LMI request to finish", 30_000);

    // Assess
    expect(error.name).toBe("AbortError");
    expect(finished).toMatchObject({ abandoned: 0, runningSequences: 0, tokensGenerated: 300 });
  });
});

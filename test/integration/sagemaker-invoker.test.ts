import { readFileSync } from "node:fs";
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { SageMakerInvoker } from "#shared/aws/sagemaker-invoker";
import type { GenerationInput, GenerationOutput } from "#shared/core/engine-codec";
import { ModelRejectedError, RetryableError } from "#shared/core/errors";
import { buildRouteCatalog, type Component, type RouteCatalog, type RoutesFile } from "#shared/core/routes";
import { startSageMakerEmulator, type SageMakerEmulator } from "#local/sagemaker/server";
import { sageMakerNames } from "#shared/config";
import { localClientConfig } from "../helpers/local-aws.ts";

/**
 * infra/routes.yml plus, where the file has none, a dynamic-batch component (and a route to it)
 * derived from its first rolling component, so both engine modes run against the emulator.
 */
function testCatalog(): { catalog: RouteCatalog; rolling: Component; dynamic: Component } {
  const file = parseYaml(readFileSync("infra/routes.yml", "utf8")) as RoutesFile;
  const [rollingName, rollingSpec] = Object.entries(file.components).find(([, c]) => c.engine === "lmi-rolling" && c.copies > 0) ?? [];
  if (!rollingName || !rollingSpec) throw new Error("infra/routes.yml has no lmi-rolling component with copies");
  let dynamicName = Object.entries(file.components).find(([, c]) => c.engine === "lmi-dynamic" && c.copies > 0)?.[0];
  if (!dynamicName) {
    dynamicName = `${rollingName}-dynamic-test`;
    file.components[dynamicName] = { ...rollingSpec, engine: "lmi-dynamic", copies: 1 };
    const [, route] = Object.entries(file.routes).find(([, r]) => r.components.includes(rollingName)) ?? [];
    if (!route) throw new Error(`no route serves ${rollingName}`);
    file.routes[`${dynamicName}-route`] = { ...route, components: [dynamicName] };
  }
  const catalog = buildRouteCatalog(file);
  const pick = (name: string) => {
    const component = catalog.components.get(name);
    if (!component) throw new Error(`component ${name} missing from the catalog`);
    return component;
  };
  return { catalog, rolling: pick(rollingName), dynamic: pick(dynamicName) };
}

const input = (prompt: string, maxNewTokens: number): GenerationInput => ({ prompt, max_new_tokens: maxNewTokens, temperature: 0.5, seed: 7 });

const fulfilled = (results: readonly PromiseSettledResult<GenerationOutput>[]) =>
  results.map((r) => (r.status === "fulfilled" ? r.value : undefined));

describe("SageMakerInvoker against the SageMaker emulator", () => {
  const { catalog, rolling, dynamic } = testCatalog();
  let emulator: SageMakerEmulator;
  let client: SageMakerRuntimeClient;
  let invoker: SageMakerInvoker;
  /** Paths of the InvokeEndpoint requests sent, per test. */
  let calls: string[] = [];

  beforeAll(async () => {
    emulator = await startSageMakerEmulator({ catalog, port: 0, timeScale: 500 });
    // As shared/aws/clients.ts builds it: one attempt, the batcher decides about retries.
    client = new SageMakerRuntimeClient({ ...localClientConfig(emulator.url), maxAttempts: 1 });
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { path?: string };
        calls.push(String(request.path));
        return next(args);
      },
      { step: "finalizeRequest", name: "countInvocations" },
    );
    invoker = new SageMakerInvoker({ client, catalog });
  });
  afterAll(async () => {
    client.destroy();
    await emulator.close();
  });

  /**
   * A prompt 10 tokens over the limit (Llama-2 splits digits), cheap to count: the emulator runs in
   * this process, and at timeScale 500 a 120 ms stall of the event loop (counting " the" x 3000
   * takes about 200 ms) is 60 simulated seconds, which times the other prompts out.
   */
  // Past the engine's context (max_prompt_tokens + max_new_tokens) with any new tokens at all.
  const overLimit = (component: Component) => "7".repeat(component.limits.max_prompt_tokens + component.limits.max_new_tokens + 10);

  describe("rolling batch", () => {
    it("sends one call per prompt and gives each its own completion of exactly max_new_tokens", async () => {
      // Prepare
      calls = [];
      const inputs = [input("Write a haiku about queues.", 5), input("List three prime numbers.", 17), input("Explain batching.", 40)];

      // Act
      const results = await invoker.invoke(rolling, inputs);

      // Assess
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
      const outputs = fulfilled(results);
      expect(outputs.map((o) => o?.completion_tokens)).toEqual([5, 17, 40]);
      expect(outputs.map((o) => o?.finish_reason)).toEqual(["length", "length", "length"]);
      for (const output of outputs) expect(output?.text.trim().length).toBeGreaterThan(0);
      expect(calls).toEqual(Array(3).fill(`/endpoints/${rolling.endpointName}/invocations`));
    });

    it("rejects a prompt past the component's context alone, as ModelRejectedError", async () => {
      // Prepare
      const inputs = [input("First prompt.", 8), input(overLimit(rolling), 8), input("Third prompt.", 8)];

      // Act
      const [first, second, third] = await invoker.invoke(rolling, inputs);

      // Assess
      expect(first).toMatchObject({ status: "fulfilled", value: { completion_tokens: 8 } });
      expect(third).toMatchObject({ status: "fulfilled", value: { completion_tokens: 8 } });
      expect(second?.status).toBe("rejected");
      const reason = second?.status === "rejected" ? second.reason : undefined;
      expect(reason).toBeInstanceOf(ModelRejectedError);
      expect(reason).toMatchObject({ code: "model_error", retryable: false });
      expect(String((reason as Error).message)).toContain(`This model's maximum context length is ${rolling.limits.max_prompt_tokens + rolling.limits.max_new_tokens} tokens.`);
    });

    it("gives nothing and calls nothing for no prompts", async () => {
      // Prepare
      calls = [];

      // Act
      const results = await invoker.invoke(rolling, []);

      // Assess
      expect(results).toEqual([]);
      expect(calls).toEqual([]);
    });
  });

  describe("dynamic batch", () => {
    it("sends the prompts as one list in one call and answers each in input order", async () => {
      // Prepare
      calls = [];
      const inputs = [input("Alpha.", 12), input("Beta, a longer prompt than the first.", 12), input("Gamma.", 12)];

      // Act
      const results = await invoker.invoke(dynamic, inputs);

      // Assess
      expect(calls).toEqual([`/endpoints/${dynamic.endpointName}/invocations`]);
      const outputs = fulfilled(results);
      expect(outputs.map((o) => o?.completion_tokens)).toEqual([12, 12, 12]);
      expect(new Set(outputs.map((o) => o?.text)).size).toBe(3);
    });

    it("rejects a prompt past the context alone as ModelRejectedError, sending halves of the list until it is alone", async () => {
      // Prepare
      calls = [];
      const inputs = [input("Alpha.", 6), input(overLimit(dynamic), 6), input("Gamma.", 6)];

      // Act
      const [first, second, third] = await invoker.invoke(dynamic, inputs);

      // Assess
      // The list, its halves [0, 1] and [2], then [0] and [1].
      expect(calls).toHaveLength(5);
      expect(first).toMatchObject({ status: "fulfilled", value: { completion_tokens: 6 } });
      expect(third).toMatchObject({ status: "fulfilled", value: { completion_tokens: 6 } });
      expect(second?.status === "rejected" ? second.reason : undefined).toBeInstanceOf(ModelRejectedError);
    });
  });

  describe("poison bisection: a batch of 64 the model refuses whole for its bad prompts", () => {
    const MARKER = "<<poison>>";
    const faults = (body?: object) =>
      fetch(`${emulator.url}/_emulator/faults`, { method: body ? "POST" : "DELETE", body: body && JSON.stringify(body) }).then((r) => expect(r.status).toBe(200));
    beforeAll(() => faults({ reject_prompts_containing: MARKER, components: [dynamic.name] }));
    afterAll(() => faults());

    const batchOf64 = (bad: readonly number[]) => Array.from({ length: 64 }, (_, i) => input(bad.includes(i) ? `Prompt ${i} ${MARKER}.` : `Prompt ${i}.`, 4));

    // One bad prompt: 2·log2(64) + 1 = 13 calls. Four: 1, then 2, 4, 6, 8, 8, 8 calls a level, 37
    // (at most 4·2·log2(64) + 1 = 49). One call per prompt after the list would be 65.
    it.each([
      { bad: [41], expectedCalls: 13 },
      { bad: [3, 17, 50, 62], expectedCalls: 37 },
    ])("fails only prompts $bad, in $expectedCalls calls, and answers the others once", async ({ bad, expectedCalls }) => {
      // Prepare
      calls = [];

      // Act
      const results = await invoker.invoke(dynamic, batchOf64(bad));

      // Assess
      expect(results.flatMap((r, i) => (r.status === "rejected" ? [i] : []))).toEqual(bad);
      for (const i of bad) {
        const result = results[i];
        expect(result?.status === "rejected" ? result.reason : undefined).toBeInstanceOf(ModelRejectedError);
      }
      expect(fulfilled(results).filter((o) => o?.completion_tokens === 4)).toHaveLength(64 - bad.length);
      expect(calls).toHaveLength(expectedCalls);
    });

    it("does not split a batch the emulator throttles: each prompt is rejected as retryable after one call", async () => {
      // Prepare
      calls = [];
      await faults({ reject_prompts_containing: MARKER, throttle_fraction: 1, components: [dynamic.name] });

      try {
        // Act
        const results = await invoker.invoke(dynamic, batchOf64([9]));

        // Assess
        expect(calls).toHaveLength(1);
        for (const r of results) expect(r.status === "rejected" ? r.reason : undefined).toBeInstanceOf(RetryableError);
      } finally {
        await faults({ reject_prompts_containing: MARKER, components: [dynamic.name] });
      }
    });
  });

  describe("deployment problems", () => {
    it("rejects every prompt for a component the endpoint does not host as RetryableError", async () => {
      // Prepare
      const unknown: Component = { ...rolling, name: `no-such-component-${Date.now()}` };

      // Act
      const results = await invoker.invoke(unknown, [input("One.", 4), input("Two.", 4)]);

      // Assess
      expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
      for (const r of results) {
        const reason = r.status === "rejected" ? r.reason : undefined;
        expect(reason).toBeInstanceOf(RetryableError);
        expect(reason).toMatchObject({ code: "unavailable", retryable: true });
      }
    });

    it("rejects every prompt for an endpoint that does not exist as RetryableError", async () => {
      // Prepare
      const unknown: Component = { ...dynamic, endpointName: `no-such-endpoint-${Date.now()}` };

      // Act
      const results = await invoker.invoke(unknown, [input("One.", 4), input("Two.", 4)]);

      // Assess
      for (const r of results) expect(r.status === "rejected" ? r.reason : undefined).toBeInstanceOf(RetryableError);
    });
  });
});

describe("SageMakerInvoker by deployed names", () => {
  const { catalog, rolling } = testCatalog();
  const prefix = "batchline-names";

  it("calls `<prefix>-<name>` (shared/config.ts), which the emulator answers for the stack's prefix, and no other", async () => {
    // Prepare
    const emulator = await startSageMakerEmulator({ catalog, port: 0, timeScale: 500, resourcePrefix: prefix });
    const client = new SageMakerRuntimeClient({ ...localClientConfig(emulator.url), maxAttempts: 1 });
    const called: string[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { path?: string; headers?: Record<string, string> };
        called.push(`${request.path} ${request.headers?.["x-amzn-sagemaker-inference-component"]}`);
        return next(args);
      },
      { step: "finalizeRequest", name: "recordNames" },
    );
    try {
      const deployed = new SageMakerInvoker({ client, catalog, names: sageMakerNames(prefix) });
      const otherStage = new SageMakerInvoker({ client, catalog, names: sageMakerNames("batchline-other") });

      // Act
      const [ours] = await deployed.invoke(rolling, [input("Hello.", 3)]);
      const [theirs] = await otherStage.invoke(rolling, [input("Hello.", 3)]);

      // Assess
      expect(called[0]).toBe(`/endpoints/${prefix}-${rolling.endpointName}/invocations ${prefix}-${rolling.name}`);
      expect(ours?.status).toBe("fulfilled");
      expect(theirs?.status === "rejected" ? theirs.reason : undefined).toBeInstanceOf(RetryableError);
    } finally {
      client.destroy();
      await emulator.close();
    }
  });
});

import { fileURLToPath } from "node:url";
import { InvokeEndpointCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { staticBatchTimeline } from "#shared/core/latency-model";
import { getProfile } from "#shared/core/profiles";
import type { Component, RouteCatalog } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { startSageMakerEmulator, type EmulatorStats, type SageMakerEmulator } from "#local/sagemaker/server";

const llama2 = tokenCounter("llama2");

/**
 * The catalog of infra/routes.yml plus test-only components on the same endpoint, derived from
 * its first rolling component so that the test follows whatever the file holds.
 */
function testCatalog() {
  const catalog = loadRouteCatalog(fileURLToPath(new URL("../../infra/routes.yml", import.meta.url)));
  const rolling = [...catalog.components.values()].find((c) => c.engine === "lmi-rolling" && c.copies > 0);
  if (!rolling) throw new Error("infra/routes.yml has no lmi-rolling component with copies");
  const derive = (suffix: string, change: Partial<Component>): Component => ({ ...rolling, ...change, name: `${rolling.name}-${suffix}` });
  const dynamic = derive("dynamic-test", { engine: "lmi-dynamic", copies: 2 });
  const scaledToZero = derive("zero-test", { copies: 0 });
  const impatient = derive("impatient-test", { limits: { ...rolling.limits, max_invocation_seconds: 1 } });
  const extra = [dynamic, scaledToZero, impatient];
  const components = new Map([...catalog.components, ...extra.map((c) => [c.name, c] as const)]);
  return { catalog: { ...catalog, components } satisfies RouteCatalog, rolling, dynamic, scaledToZero, impatient };
}

function client(emulator: SageMakerEmulator) {
  return new SageMakerRuntimeClient({
    endpoint: emulator.url,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
}

const invoke = (component: Component, body: unknown, endpoint = component.endpointName) =>
  new InvokeEndpointCommand({
    EndpointName: endpoint,
    InferenceComponentName: component.name,
    ContentType: "application/json",
    Body: typeof body === "string" ? body : JSON.stringify(body),
  });

const decode = (body: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(body)) as unknown;

async function caught(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error as Error & Record<string, unknown>;
    throw error;
  }
  throw new Error("expected the call to fail");
}

const copiesOf = (stats: EmulatorStats, component: string) => stats.components.find((c) => c.component === component)?.copies ?? [];

describe("SageMaker runtime emulator, through the AWS SDK", () => {
  const { catalog, rolling, dynamic, scaledToZero, impatient } = testCatalog();
  let emulator: SageMakerEmulator;
  let sagemaker: SageMakerRuntimeClient;

  beforeAll(async () => {
    emulator = await startSageMakerEmulator({ catalog, port: 0, timeScale: 200 });
    sagemaker = client(emulator);
  });
  afterAll(async () => {
    sagemaker.destroy();
    await emulator.close();
  });

  it("answers InvokeEndpoint on an inference component with exactly max_new_tokens tokens", async () => {
    // Prepare
    const prompt = "Write a haiku about queues.";

    // Act
    const out = await sagemaker.send(invoke(rolling, { inputs: prompt, parameters: { max_new_tokens: 37, seed: 1 } }));

    // Assess
    expect(out.InvokedProductionVariant).toBe("AllTraffic");
    expect(out.ContentType).toBe("application/json");
    const body = decode(out.Body) as { generated_text: string; details: Record<string, unknown> };
    expect(llama2.countCompletion(body.generated_text)).toBe(37);
    expect(body.details).toEqual({ finish_reason: "length", generated_tokens: 37, prompt_tokens: llama2.countPrompt(prompt) });
  });

  it("gives the same text for the same prompt and seed", async () => {
    // Act
    const [a, b] = await Promise.all(
      [0, 1].map(() => sagemaker.send(invoke(rolling, { inputs: "same", parameters: { max_new_tokens: 20, seed: 9 } }))),
    );

    // Assess
    expect(decode(a?.Body)).toEqual(decode(b?.Body));
  });

  it("runs a dynamic-batch list as one batch and answers in input order", async () => {
    // Prepare
    const prompts = ["one", "two two", "three three three"];

    // Act
    const out = await sagemaker.send(invoke(dynamic, { inputs: prompts, parameters: { max_new_tokens: 12 } }));

    // Assess
    const body = decode(out.Body) as { generated_text: string; details: { prompt_tokens: number } }[];
    expect(body.map((g) => llama2.countCompletion(g.generated_text))).toEqual([12, 12, 12]);
    expect(body.map((g) => g.details.prompt_tokens)).toEqual(prompts.map((p) => llama2.countPrompt(p)));
    const batches = copiesOf(emulator.stats(), dynamic.name).filter((c) => c.sequences > 0);
    expect(batches).toEqual([expect.objectContaining({ invocations: 1, sequences: 3, batches: 1 })]);
  });

  it("batches concurrent requests on a rolling component", async () => {
    // Prepare: long generations, so that all sixteen arrive while the first batch runs.
    const before = copiesOf(emulator.stats(), rolling.name);
    const count = (key: "invocations" | "sequences" | "batches", copies = copiesOf(emulator.stats(), rolling.name)) =>
      copies.reduce((sum, c) => sum + c[key], 0) - before.reduce((sum, c) => sum + c[key], 0);

    // Act
    const outs = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        sagemaker.send(invoke(rolling, { inputs: `request ${i}`, parameters: { max_new_tokens: 2048 } })),
      ),
    );

    // Assess
    const texts = outs.map((o) => (decode(o.Body) as { generated_text: string }).generated_text);
    expect(texts.map((t) => llama2.countCompletion(t))).toEqual(Array(16).fill(2048));
    expect(count("invocations")).toBe(16);
    expect(count("sequences")).toBe(16);
    expect(count("batches")).toBeLessThan(16);
    expect(copiesOf(emulator.stats(), rolling.name).every((c) => c.outstanding === 0 && c.queueLength === 0)).toBe(true);
  });

  it("serves its stats over HTTP", async () => {
    // Act
    const response = await fetch(`${emulator.url}/_emulator/stats`);

    // Assess
    expect(response.status).toBe(200);
    const stats = (await response.json()) as EmulatorStats;
    expect(stats.timeScale).toBe(200);
    expect(stats.components.map((c) => c.component)).toEqual([...catalog.components.keys()]);
  });

  describe("errors, named as the SDK names them", () => {
    it("an unknown endpoint is a ValidationError", async () => {
      // Act
      const error = await caught(sagemaker.send(invoke(rolling, { inputs: "x", parameters: { max_new_tokens: 1 } }, "no-such-endpoint")));

      // Assess
      expect(error.name).toBe("ValidationError");
      expect(error.message).toBe("Endpoint no-such-endpoint of account 000000000000 not found.");
      expect(error.$metadata).toMatchObject({ httpStatusCode: 400 });
    });

    it("a missing inference component is a ValidationError", async () => {
      // Act
      const error = await caught(
        sagemaker.send(new InvokeEndpointCommand({ EndpointName: rolling.endpointName, Body: JSON.stringify({ inputs: "x" }) })),
      );

      // Assess
      expect(error.name).toBe("ValidationError");
      expect(error.message).toMatch(/Inference Component Name header is required/);
    });

    it("an unknown inference component is a ValidationError naming it", async () => {
      // Act
      const error = await caught(sagemaker.send(invoke({ ...rolling, name: "ghost-ic" }, { inputs: "x", parameters: { max_new_tokens: 1 } })));

      // Assess
      expect(error.name).toBe("ValidationError");
      expect(error.message).toContain("ghost-ic");
    });

    it.each([
      { problem: "malformed JSON", body: "{not json", says: /not valid JSON/ },
      { problem: "missing inputs", body: { parameters: { max_new_tokens: 5 } }, says: /inputs/ },
      { problem: "a non-integer max_new_tokens", body: { inputs: "x", parameters: { max_new_tokens: 2.5 } }, says: /max_new_tokens/ },
      { problem: "a missing max_new_tokens", body: { inputs: "x", parameters: {} }, says: /max_new_tokens/ },
      { problem: "max_new_tokens over the limit", body: { inputs: "x", parameters: { max_new_tokens: 1_000_000 } }, says: /over this model's limit/ },
      { problem: "a list sent to a rolling batch", body: { inputs: ["a", "b"], parameters: { max_new_tokens: 5 } }, says: /one prompt per request/ },
    ])("$problem is a ModelError with OriginalStatusCode 400", async ({ body, says }) => {
      // Act
      const error = await caught(sagemaker.send(invoke(rolling, body)));

      // Assess
      expect(error.name).toBe("ModelError");
      expect(error.$metadata).toMatchObject({ httpStatusCode: 424 });
      expect(error.OriginalStatusCode).toBe(400);
      expect(error.OriginalMessage).toMatch(says);
      expect(error.ErrorCode).toBe("CLIENT_ERROR_FROM_MODEL");
      expect(error.LogStreamArn).toContain(rolling.name);
    });

    it("a prompt over max_prompt_tokens is a ModelError with OriginalStatusCode 400", async () => {
      // Prepare
      const prompt = " the".repeat(rolling.limits.max_prompt_tokens);

      // Act
      const error = await caught(sagemaker.send(invoke(rolling, { inputs: prompt, parameters: { max_new_tokens: 1 } })));

      // Assess
      expect(error.name).toBe("ModelError");
      expect(error.OriginalStatusCode).toBe(400);
      expect(error.OriginalMessage).toContain(`limit of ${rolling.limits.max_prompt_tokens} prompt tokens`);
    });

    it("a body over the payload limit is a 413 ValidationError naming the limit", async () => {
      // Prepare
      const prompt = "a".repeat(rolling.limits.payload_bytes);

      // Act
      const error = await caught(sagemaker.send(invoke(rolling, { inputs: prompt, parameters: { max_new_tokens: 1 } })));

      // Assess
      expect(error.name).toBe("ValidationError");
      expect(error.$metadata).toMatchObject({ httpStatusCode: 413 });
      expect(error.message).toContain(`${rolling.limits.payload_bytes} bytes`);
    });

    it("a component with no copies is a ModelNotReadyException", async () => {
      // Act
      const error = await caught(sagemaker.send(invoke(scaledToZero, { inputs: "x", parameters: { max_new_tokens: 1 } })));

      // Assess
      expect(error.name).toBe("ModelNotReadyException");
      expect(error.$metadata).toMatchObject({ httpStatusCode: 429 });
    });

    it("a request past max_invocation_seconds is a ModelError timeout", async () => {
      // Act: 512 new tokens take about 3 simulated seconds; the component allows 1.
      const error = await caught(sagemaker.send(invoke(impatient, { inputs: "x", parameters: { max_new_tokens: 512 } })));

      // Assess
      expect(error.name).toBe("ModelError");
      expect(error.OriginalStatusCode).toBe(0);
      expect(error.OriginalMessage).toMatch(/timed out/);
      expect(error.ErrorCode).toBe("ModelInvocationTimeExceeded");
    });

    it("an unknown path is a 404", async () => {
      // Act
      const response = await fetch(`${emulator.url}/endpoints/x/unknown`, { method: "POST" });

      // Assess
      expect(response.status).toBe(404);
    });
  });
});

describe("SageMaker runtime emulator in real time", () => {
  it("takes at least the simulated time of a request in wall-clock time", async () => {
    // Prepare
    const { catalog, rolling } = testCatalog();
    const emulator = await startSageMakerEmulator({ catalog, port: 0, timeScale: 1 });
    const sagemaker = client(emulator);
    const prompt = "How long does this take?";
    const simulatedMs = staticBatchTimeline(getProfile(rolling.profile), [{ promptTokens: llama2.countPrompt(prompt), newTokens: 8 }]).totalMs;

    try {
      // Act
      const started = performance.now();
      await sagemaker.send(invoke(rolling, { inputs: prompt, parameters: { max_new_tokens: 8 } }));
      const elapsedMs = performance.now() - started;

      // Assess
      expect(elapsedMs).toBeGreaterThanOrEqual(simulatedMs);
    } finally {
      sagemaker.destroy();
      await emulator.close();
    }
  });
});

import {
  InternalDependencyException,
  InternalFailure,
  InvokeEndpointCommand,
  ModelError,
  SageMakerRuntimeClient,
  SageMakerRuntimeServiceException,
  ServiceUnavailable,
  ValidationError,
} from "@aws-sdk/client-sagemaker-runtime";
import { afterEach, describe, expect, it } from "vitest";
import type { Component } from "#shared/core/routes";
import { startSageMakerEmulator } from "#local/sagemaker/server";
import { localClientConfig, pollUntil } from "../helpers/local-aws.ts";
import { caught, componentOf, control, emulatorForTests, invokeCommand, routesCatalog, sagemakerClient, withTestComponents } from "../helpers/sagemaker.ts";

/**
 * Every limit and fault of the emulator, asserted as the exception class the AWS SDK v3 raises
 * (with maxAttempts 1, so each test sees the first answer).
 */
const routes = routesCatalog();
const rolling = componentOf(routes, "llama-2-7b-ic");
const vllm = componentOf(routes, "llama-3-8b-ic");
const { catalog, added } = withTestComponents(routes, rolling, {
  "zero-test": { copies: 0, warmup_seconds: 10 },
  "impatient-test": { limits: { ...rolling.limits, max_invocation_seconds: 1 } },
  "narrow-test": { max_queue_length: 1, limits: { ...rolling.limits, max_sequences: 1 } },
  "faulty-test": {},
});
const test = (name: string): Component => added[name] ?? rolling;

const body = (maxNewTokens = 4) => ({ inputs: "Hello", parameters: { max_new_tokens: maxNewTokens } });

describe("SageMaker emulator errors, as the SDK raises them", () => {
  const env = emulatorForTests({ catalog, timeScale: 50 });
  const call = (component: Component, payload: unknown = body()) => env.sagemaker.send(invokeCommand(component, payload));

  describe("validation", () => {
    it("an unknown endpoint is a ValidationError", async () => {
      // Act
      const error = await caught(env.sagemaker.send(invokeCommand(rolling, body(), "no-such-endpoint")));

      // Assess
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toBe("Endpoint no-such-endpoint of account 000000000000 not found.");
      expect(error.$metadata).toMatchObject({ httpStatusCode: 400 });
    });

    it("a call without an inference component is a ValidationError", async () => {
      // Act
      const error = await caught(env.sagemaker.send(new InvokeEndpointCommand({ EndpointName: rolling.endpointName, Body: JSON.stringify(body()) })));

      // Assess
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toMatch(/Inference Component Name header is required/);
    });

    it("an unknown inference component, or one of another endpoint, is a ValidationError naming it", async () => {
      // Act
      const unknown = await caught(call({ ...rolling, name: "ghost-ic" }));
      const elsewhere = await caught(env.sagemaker.send(invokeCommand(test("faulty-test"), body(), rolling.endpointName)));

      // Assess
      expect(unknown).toBeInstanceOf(ValidationError);
      expect(unknown.message).toBe(`Inference component ghost-ic not found on endpoint ${rolling.endpointName}.`);
      expect(elsewhere).toBeInstanceOf(ValidationError);
    });

    it("a body over the payload limit (6 MB) is a 413 ValidationError naming the limit", async () => {
      // Act
      const error = await caught(call(rolling, { inputs: "a".repeat(rolling.limits.payload_bytes), parameters: { max_new_tokens: 1 } }));

      // Assess
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.$metadata).toMatchObject({ httpStatusCode: 413 });
      expect(error.message).toContain(`${rolling.limits.payload_bytes} bytes`);
    });
  });

  describe("the model's own refusals, as ModelError with its original status", () => {
    it.each([
      { problem: "malformed JSON", payload: "{not json", says: /not valid JSON/ },
      { problem: "missing inputs", payload: { parameters: { max_new_tokens: 5 } }, says: /inputs/ },
      { problem: "a non-integer max_new_tokens", payload: { inputs: "x", parameters: { max_new_tokens: 2.5 } }, says: /max_new_tokens/ },
      { problem: "a missing max_new_tokens", payload: { inputs: "x", parameters: {} }, says: /max_new_tokens/ },
      { problem: "max_new_tokens over the limit", payload: { inputs: "x", parameters: { max_new_tokens: 1_000_000 } }, says: /over this model's limit/ },
      { problem: "a list sent to a rolling batch", payload: { inputs: ["a", "b"], parameters: { max_new_tokens: 5 } }, says: /one prompt per request/ },
      { problem: "a prompt past the context", payload: { inputs: "7".repeat(rolling.limits.max_prompt_tokens + rolling.limits.max_new_tokens + 10), parameters: { max_new_tokens: 1 } }, says: /maximum context length/ },
    ])("$problem: 400", async ({ payload, says }) => {
      // Act
      const error = await caught(call(rolling, payload));

      // Assess
      expect(error).toBeInstanceOf(ModelError);
      expect(error.$metadata).toMatchObject({ httpStatusCode: 424 });
      expect(error.OriginalStatusCode).toBe(400);
      expect(error.OriginalMessage).toMatch(says);
      expect(JSON.parse(String(error.OriginalMessage))).toMatchObject({ code: 400, type: "BadRequestException" });
      expect(error.ErrorCode).toBe("CLIENT_ERROR_FROM_MODEL");
      expect(error.LogStreamArn).toContain(rolling.name);
    });

    it("an OpenAI body naming a model the vLLM container does not serve: 404 in vLLM's shape", async () => {
      // Act
      const error = await caught(call(vllm, { model: "gpt-9", prompt: "x", max_tokens: 1 }));

      // Assess
      expect(error).toBeInstanceOf(ModelError);
      expect(error.OriginalStatusCode).toBe(404);
      expect(JSON.parse(String(error.OriginalMessage))).toEqual({ object: "error", message: "The model `gpt-9` does not exist.", type: "NotFoundError", param: null, code: 404 });
    });
  });

  describe("limits", () => {
    it("a call past the 60-second invocation limit (here 1 s) is a ModelError timeout, OriginalStatusCode 0", async () => {
      // Act: 512 new tokens take about 3 simulated seconds.
      const error = await caught(call(test("impatient-test"), body(512)));

      // Assess
      expect(error).toBeInstanceOf(ModelError);
      expect(error.OriginalStatusCode).toBe(0);
      expect(error.OriginalMessage).toMatch(/timed out/);
      expect(error.ErrorCode).toBe("ModelInvocationTimeExceeded");
    });

    it("a call the container's full queue refuses is a ModelError with OriginalStatusCode 429", async () => {
      // Prepare: one sequence runs, one waits; each takes about 12 simulated seconds. Time runs 5x
      // here, not 50x: a busy machine must not finish the first before the second is queued.
      const slow = await startSageMakerEmulator({ catalog, port: 0, timeScale: 5 });
      const client = sagemakerClient(slow);
      const narrow = test("narrow-test");
      const send = (payload: unknown) => client.send(invokeCommand(narrow, payload));
      try {
        const running = send(body(2048));
        const waiting = send(body(2048));
        await pollUntil(async () => ((await control(slow, "GET", "/_emulator/stats")).components.find((c: any) => c.component === narrow.name)?.copies[0]?.waitingRequests === 1 ? true : undefined), "a request waiting in the queue");

        // Act
        const error = await caught(send(body()));

        // Assess
        expect(error).toBeInstanceOf(ModelError);
        expect(error.OriginalStatusCode).toBe(429);
        expect(JSON.parse(String(error.OriginalMessage))).toMatchObject({ code: 429, type: "WlmCapacityException" });
        await Promise.all([running, waiting]);
      } finally {
        client.destroy();
        await slow.close();
      }
      // Two 12-second calls at 5x take 5 s alone; a loaded CI machine ran past vitest's default 10 s.
    }, 60_000);

    it("a component with no copy in service is a ValidationError saying it has no capacity, which starts nothing; a copy scaled out answers after its warm-up", async () => {
      // Prepare
      const zero = test("zero-test");
      const noCapacity = /^Inference Component has no capacity to process this request\. ApplicationAutoScaling may be in-progress/;
      const statsOf = async () => (await control(env.emulator, "GET", "/_emulator/stats")).components.find((c: any) => c.component === zero.name);

      // Act
      const atZero = await caught(call(zero));
      const copiesAfterTheCall = (await statsOf()).copies;
      await control(env.emulator, "POST", `/_emulator/components/${zero.name}/copies`, { copies: 1 });
      const warming = await caught(call(zero));
      const answered = await pollUntil(() => call(zero).catch(() => undefined), "the copy to warm up");

      // Assess
      expect(atZero).toBeInstanceOf(ValidationError);
      expect(atZero.$metadata).toMatchObject({ httpStatusCode: 400 });
      expect(atZero.message).toMatch(noCapacity);
      expect(copiesAfterTheCall).toEqual([]);
      expect(warming).toBeInstanceOf(ValidationError);
      expect(warming.message).toMatch(noCapacity);
      expect(answered.$metadata.httpStatusCode).toBe(200);
      const stats = await statsOf();
      expect(stats.noCapacityInvocationFailures).toBeGreaterThanOrEqual(2);
      expect(stats.copies[0].readyAtMs - stats.copies[0].placedAtMs).toBe(10_000);
    });
  });

  describe("injected faults", () => {
    const faulty = test("faulty-test");
    const inject = (faults: object) => control(env.emulator, "POST", "/_emulator/faults", { components: [faulty.name], ...faults });
    afterEach(() => control(env.emulator, "DELETE", "/_emulator/faults"));

    it("throttling is a ThrottlingException (400), which the SDK retries", async () => {
      // Prepare
      await inject({ throttle_fraction: 1 });
      const retrying = new SageMakerRuntimeClient({ ...localClientConfig(env.emulator.url), maxAttempts: 2 });

      try {
        // Act
        const error = await caught(retrying.send(invokeCommand(faulty, body())));

        // Assess
        expect(error).toBeInstanceOf(SageMakerRuntimeServiceException);
        expect(error.name).toBe("ThrottlingException");
        expect(error.message).toBe("Rate exceeded");
        expect(error.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 2 });
      } finally {
        retrying.destroy();
      }
    });

    it.each([
      { type: "ServiceUnavailable", exception: ServiceUnavailable, status: 503 },
      { type: "InternalFailure", exception: InternalFailure, status: 500 },
      { type: "InternalDependencyException", exception: InternalDependencyException, status: 530 },
      { type: "ModelError", exception: ModelError, status: 424 },
    ])("a $type fault is the SDK's $type ($status)", async ({ type, exception, status }) => {
      // Prepare
      await inject({ error_fraction: 1, error_type: type });

      // Act
      const error = await caught(call(faulty));

      // Assess
      expect(error).toBeInstanceOf(exception);
      expect(error.$metadata).toMatchObject({ httpStatusCode: status });
      if (type === "ModelError") expect(error.OriginalStatusCode).toBe(500);
    });

    it("a share of the calls fails, the same ones for the same seed", async () => {
      // Prepare
      const outcomes = async () => {
        await inject({ throttle_fraction: 0.5, seed: 3 });
        const results = [];
        for (let i = 0; i < 12; i++) results.push(await call(faulty).then(() => "ok", (e: Error) => e.name));
        return results;
      };

      // Act
      const first = await outcomes();
      const second = await outcomes();

      // Assess
      expect(second).toEqual(first);
      expect(new Set(first)).toEqual(new Set(["ok", "ThrottlingException"]));
    });

    it("a slow call answers later by the injected time, and past the limit it is a ModelError timeout", async () => {
      // Prepare
      await inject({ slow_fraction: 1, slow_seconds: 5 });
      const slowOut = await call(faulty);
      const impatient = test("impatient-test");
      await inject({ slow_fraction: 1, slow_seconds: 5, components: [impatient.name] });

      // Act: the impatient component allows 1 s.
      const error = await caught(call(impatient));

      // Assess
      expect(slowOut.$metadata.httpStatusCode).toBe(200);
      const latency = (await control(env.emulator, "GET", "/_emulator/stats")).components.find((c: any) => c.component === faulty.name).modelLatencyMs;
      expect(latency.max).toBeGreaterThanOrEqual(5000);
      expect(error).toBeInstanceOf(ModelError);
      expect(error.ErrorCode).toBe("ModelInvocationTimeExceeded");
    });

    it("an outage window fails every call with ServiceUnavailable until it ends", async () => {
      // Prepare
      await inject({ outage: { for_seconds: 10 } });

      // Act
      const during = await caught(call(faulty));
      const after = await pollUntil(() => call(faulty).catch(() => undefined), "the outage to end");

      // Assess
      expect(during).toBeInstanceOf(ServiceUnavailable);
      expect(after.$metadata.httpStatusCode).toBe(200);
    });

    it("an outage that drops connections leaves the SDK with a network error and no answer", async () => {
      // Prepare
      await inject({ outage: { for_seconds: 60, kind: "reset" } });

      // Act
      const error = await caught(call(faulty));

      // Assess
      expect(error.$metadata).not.toHaveProperty("httpStatusCode");
      expect(`${error.name} ${String(error.code)} ${error.message}`).toMatch(/ECONNRESET|socket hang up|EPIPE/);
    });

    it("faults can be set when the emulator starts", async () => {
      // Prepare
      const other = await startSageMakerEmulator({ catalog, port: 0, timeScale: 50, faults: { throttle_fraction: 1 } });
      const client = sagemakerClient(other);

      try {
        // Act
        const error = await caught(client.send(invokeCommand(rolling, body())));

        // Assess
        expect(error.name).toBe("ThrottlingException");
        expect((await control(other, "GET", "/_emulator/faults")).throttle_fraction).toBe(1);
      } finally {
        client.destroy();
        await other.close();
      }
    });

    it("refuses fault settings it does not know, naming them", async () => {
      // Act
      const response = await fetch(`${env.emulator.url}/_emulator/faults`, { method: "POST", body: JSON.stringify({ throttle_fraction: 2, drop: true }) });

      // Assess
      expect(response.status).toBe(400);
      expect(((await response.json()) as { message: string }).message).toMatch(/throttle_fraction.*drop|drop.*throttle_fraction/s);
    });
  });

  it("an unknown path is a 404", async () => {
    // Act
    const response = await fetch(`${env.emulator.url}/endpoints/x/unknown`, { method: "POST" });

    // Assess
    expect(response.status).toBe(404);
  });
});

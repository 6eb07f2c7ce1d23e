import { describe, expect, it } from "vitest";
import { tokenCounter } from "#shared/core/tokens";
import type { EmulatorStats } from "#local/sagemaker/server";
import { pollUntil } from "../helpers/local-aws.ts";
import { componentOf, control, decodeJson, emulatorForTests, invokeCommand, routesCatalog, withTestComponents } from "../helpers/sagemaker.ts";

const llama2 = tokenCounter("llama2");
const llama3 = tokenCounter("llama3");

const routes = routesCatalog();
const rolling = componentOf(routes, "llama-2-7b-ic");
const { catalog, added } = withTestComponents(routes, rolling, {
  "dynamic-test": { engine: "lmi-dynamic", copies: 2 },
  "scalable-test": { copies: 1, warmup_seconds: 20 },
});
const dynamic = added["dynamic-test"] ?? rolling;
const scalable = added["scalable-test"] ?? rolling;
const vllm = componentOf(catalog, "llama-3-8b-ic");
const small = componentOf(catalog, "llama-3-1b-ic");

const copiesOf = (stats: EmulatorStats, component: string) => stats.components.find((c) => c.component === component)?.copies ?? [];

describe("SageMaker runtime emulator, through the AWS SDK", () => {
  const env = emulatorForTests({ catalog, timeScale: 200 });

  describe("request formats", () => {
    it("answers an LMI rolling-batch body with exactly max_new_tokens tokens", async () => {
      // Prepare
      const prompt = "Write a haiku about queues.";

      // Act
      const out = await env.sagemaker.send(invokeCommand(rolling, { inputs: prompt, parameters: { max_new_tokens: 37, seed: 1, details: true } }));

      // Assess
      expect(out.InvokedProductionVariant).toBe("AllTraffic");
      expect(out.ContentType).toBe("application/json");
      const body = decodeJson(out.Body) as { generated_text: string; details: Record<string, unknown> };
      expect(llama2.countCompletion(body.generated_text)).toBe(37);
      expect(body.details).toEqual({ finish_reason: "length", generated_tokens: 37, prompt_tokens: llama2.countPrompt(prompt) });
    });

    it("leaves the details out unless asked, as LMI does", async () => {
      // Act
      const out = await env.sagemaker.send(invokeCommand(rolling, { inputs: "hi", parameters: { max_new_tokens: 3 } }));

      // Assess
      expect(Object.keys(decodeJson(out.Body) as object)).toEqual(["generated_text"]);
    });

    it("gives the same text for the same prompt and seed", async () => {
      // Act
      const [a, b] = await Promise.all([0, 1].map(() => env.sagemaker.send(invokeCommand(rolling, { inputs: "same", parameters: { max_new_tokens: 20, seed: 9 } }))));

      // Assess
      expect(decodeJson(a?.Body)).toEqual(decodeJson(b?.Body));
    });

    it("runs an LMI dynamic-batch list as one batch to its longest and answers in input order", async () => {
      // Prepare
      const prompts = ["one", "two two", "three three three"];

      // Act
      const out = await env.sagemaker.send(invokeCommand(dynamic, { inputs: prompts, parameters: { max_new_tokens: 12, details: true } }));

      // Assess
      const body = decodeJson(out.Body) as { generated_text: string; details: { prompt_tokens: number } }[];
      expect(body.map((g) => llama2.countCompletion(g.generated_text))).toEqual([12, 12, 12]);
      expect(body.map((g) => g.details.prompt_tokens)).toEqual(prompts.map((p) => llama2.countPrompt(p)));
      const used = copiesOf(env.emulator.stats(), dynamic.name).filter((c) => c.invocations > 0);
      expect(used).toEqual([expect.objectContaining({ invocations: 1, iterations: 12, batchSize: expect.objectContaining({ max: 3 }) })]);
    });

    it("answers vLLM's OpenAI completions body with choices and usage, counted by the Llama-3 tokenizer", async () => {
      // Prepare
      const prompt = "Name three rivers.";

      // Act
      const out = await env.sagemaker.send(invokeCommand(vllm, { model: "llama-3-8b", prompt, max_tokens: 21, seed: 4 }));

      // Assess
      const body = decodeJson(out.Body) as any;
      expect(body).toMatchObject({
        id: expect.stringMatching(/^cmpl-/),
        object: "text_completion",
        created: expect.any(Number),
        model: "llama-3-8b",
        choices: [{ index: 0, text: expect.any(String), logprobs: null, finish_reason: "length" }],
        usage: { prompt_tokens: llama3.countPrompt(prompt), completion_tokens: 21, total_tokens: llama3.countPrompt(prompt) + 21 },
      });
      expect(llama3.countCompletion(body.choices[0].text)).toBe(21);
    });

    it("answers an OpenAI body asking to stream with server-sent events, through InvokeEndpoint", async () => {
      // Act
      const out = await env.sagemaker.send(invokeCommand(vllm, { prompt: "Stream it.", max_tokens: 4, stream: true, stream_options: { include_usage: true } }));

      // Assess
      expect(out.ContentType).toBe("text/event-stream");
      const events = new TextDecoder().decode(out.Body).split("\n\n").filter(Boolean);
      expect(events.at(-1)).toBe("data: [DONE]");
      const data = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, "")));
      expect(data.at(-1).usage).toMatchObject({ completion_tokens: 4 });
      expect(data.slice(0, -1).map((d: any) => d.choices[0].text).join("").split(" ").length).toBe(4);
    });

    it("varies output lengths with an early-stop distribution, saying stop", async () => {
      // Prepare
      await control(env.emulator, "POST", "/_emulator/early-stop", { median_tokens: 8, sigma: 0.5 });

      try {
        // Act
        const outs = await Promise.all(
          Array.from({ length: 12 }, (_, i) => env.sagemaker.send(invokeCommand(small, { inputs: `q${i}`, parameters: { max_new_tokens: 200, details: true } }))),
        );

        // Assess
        const details = outs.map((o) => (decodeJson(o.Body) as { generated_text: string; details: { finish_reason: string; generated_tokens: number } }));
        expect(details.every((d) => d.details.finish_reason === "stop" && d.details.generated_tokens < 200)).toBe(true);
        expect(details.every((d) => llama3.countCompletion(d.generated_text) === d.details.generated_tokens)).toBe(true);
        expect(new Set(details.map((d) => d.details.generated_tokens)).size).toBeGreaterThan(3);
      } finally {
        await control(env.emulator, "DELETE", "/_emulator/early-stop");
      }
    });
  });

  describe("endpoints, components and copies", () => {
    it("hosts two models on one endpoint, each copy on GPUs of its own, each serving its own model", async () => {
      // Act
      const [a, b] = await Promise.all([
        env.sagemaker.send(invokeCommand(rolling, { inputs: "x", parameters: { max_new_tokens: 5 } })),
        env.sagemaker.send(invokeCommand(small, { inputs: "y", parameters: { max_new_tokens: 5 } })),
      ]);

      // Assess
      expect([a.$metadata.httpStatusCode, b.$metadata.httpStatusCode]).toEqual([200, 200]);
      const stats = env.emulator.stats();
      const onShared = stats.components.filter((c) => c.endpoint === rolling.endpointName);
      expect(onShared.length).toBeGreaterThanOrEqual(2);
      const gpus = onShared.flatMap((c) => c.copies.map((copy) => `${copy.instance}/${copy.gpus.join(",")}`));
      expect(new Set(gpus).size).toBe(gpus.length);
      const shared = stats.endpoints.find((e) => e.endpoint === rolling.endpointName);
      expect(shared?.gpusInUse).toBe(onShared.reduce((sum, c) => sum + c.copies.length * 1, 0));
    });

    it("serves a component's copies in parallel, routed by least outstanding requests", async () => {
      // Prepare: vLLM's two copies; four long requests.
      const before = copiesOf(env.emulator.stats(), vllm.name).map((c) => c.invocations);

      // Act
      await Promise.all(Array.from({ length: 4 }, (_, i) => env.sagemaker.send(invokeCommand(vllm, { prompt: `p${i}`, max_tokens: 400 }))));

      // Assess
      const copies = copiesOf(env.emulator.stats(), vllm.name);
      expect(copies.map((c, i) => c.invocations - (before[i] ?? 0))).toEqual([2, 2]);
      expect(copies.every((c) => c.maxConcurrentRequests >= 2)).toBe(true);
    });

    it("adds a copy at run time, which serves only after its warm-up", async () => {
      // Act
      const scaled = await control(env.emulator, "POST", `/_emulator/components/${scalable.name}/copies`, { copies: 2 });

      // Assess
      expect(scaled.copies.map((c: { state: string }) => c.state)).toEqual(["ready", "warming"]);
      const ready = await pollUntil(async () => {
        const copies = copiesOf(env.emulator.stats(), scalable.name);
        return copies.every((c) => c.state === "ready") ? copies : undefined;
      }, "the new copy to warm up");
      expect(ready[1]?.readyAtMs).toBeGreaterThanOrEqual(20_000);
    });

    it("serves its stats over HTTP: per copy, what CloudWatch would give and what the GPU did", async () => {
      // Act
      const stats = (await control(env.emulator, "GET", "/_emulator/stats")) as EmulatorStats;

      // Assess
      expect(stats.timeScale).toBe(200);
      expect(stats.components.map((c) => c.component)).toEqual([...catalog.components.keys()]);
      const copy = stats.components.find((c) => c.component === rolling.name)?.copies[0];
      expect(copy).toMatchObject({
        invocations: expect.any(Number),
        concurrentRequests: 0,
        modelLatencyMs: expect.objectContaining({ count: expect.any(Number), p50: expect.any(Number), p99: expect.any(Number) }),
        overheadLatencyMs: expect.objectContaining({ count: expect.any(Number) }),
        gpuBusyFraction: expect.any(Number),
        tokensGenerated: expect.any(Number),
        batchSize: expect.objectContaining({ mean: expect.any(Number), max: expect.any(Number) }),
        kvCacheTokens: expect.objectContaining({ capacity: rolling.limits.token_budget }),
        series: expect.arrayContaining([expect.objectContaining({ busyFraction: expect.any(Number), meanBatchSize: expect.any(Number), meanKvTokens: expect.any(Number) })]),
      });
      expect(copy?.invocations).toBeGreaterThan(0);
    });
  });
});

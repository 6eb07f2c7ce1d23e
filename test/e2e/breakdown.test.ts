import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import OpenAI, { toFile } from "openai";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobBreakdown } from "#shared/core/job-breakdown";
import { type Stack, startStack } from "#local/stack";
import { EventClient } from "../helpers/ws-client.ts";

// Every finished job's breakdown on the embedded stack (real SDK clients, real servers, the
// emulator at real time), with the default component on a dynamic-batch engine so that jobs run
// as static batches: GET /v1/jobs/{id}, the final WebSocket event, the JSON-lines batch results
// and the OpenAI output file all carry it, and the jobs of each GPU call share its copy's cost
// over the call's time exactly (within 1%).
const stage = `e2ebd${Math.random().toString(36).slice(2, 7)}`;
const model = "llama-2-7b";
const component = "llama-2-7b-ic";
const finalTypes = new Set(["job.succeeded", "job.failed", "job.cancelled", "job.expired"]);

let dir: string;
let stack: Stack;

async function api(method: string, path: string, body?: string): Promise<{ status: number; text: string; json: any }> {
  const response = await fetch(`${stack.endpoints.http}${path}`, { method, headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" }, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(300);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "batchline-e2e-breakdown-"));
  const raw = parseYaml(await readFile(join(process.cwd(), "infra", "routes.yml"), "utf8")) as { components: Record<string, Record<string, unknown>> };
  const routed = raw.components[component];
  if (!routed) throw new Error(`no ${component} in infra/routes.yml`);
  routed.engine = "lmi-dynamic";
  const routesFile = join(dir, "routes.yml");
  await writeFile(routesFile, stringifyYaml(raw));
  stack = await startStack({ stage, routesFile });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A breakdown as the API shows it: every field there, with the copy's id null as SageMaker gives none. */
function expectComplete(breakdown: JobBreakdown | undefined, promptTokens: number, generated: number): asserts breakdown is JobBreakdown {
  expect(breakdown).toMatchObject({
    queue_wait_ms: expect.any(Number),
    batcher_hold_ms: expect.any(Number),
    gpu_ms: expect.any(Number),
    gpu_batch: { id: expect.any(String), sequences: expect.any(Number), kv_tokens: expect.any(Number) },
    component,
    copy: { id: null, gpus: 1, usd_per_hour: expect.any(Number) },
    attempts: 1,
    prompt_tokens: promptTokens,
    generated_tokens: generated,
    cost: { usd: expect.any(Number), rule: "static-batch" },
  });
  if (!breakdown) throw new Error("no breakdown");
  expect(breakdown.gpu_ms).toBeGreaterThan(0);
  expect(breakdown.cost.usd).toBeGreaterThan(0);
  expect(breakdown.gpu_batch.kv_tokens).toBeGreaterThan(0);
}

describe("the per-job breakdown on the embedded stack", () => {
  it("is on GET, the final event, the batch results and the OpenAI output, and each static batch's shares add up to price × its call's time", { timeout: 300_000 }, async () => {
    // Prepare: a watcher for the jobs' events.
    const client = await EventClient.connect(stack.endpoints.websocket ?? "", stack.apiKey);

    // Act: six jobs at once (static batches of several prompts), a JSON-lines batch and an OpenAI batch.
    const submitted = await Promise.all(
      Array.from({ length: 6 }, (_, i) => api("POST", "/v1/jobs", JSON.stringify({ model, prompt: `Count to ${i + 3}, please.`, max_tokens: 16 }))),
    );
    const jobIds: string[] = submitted.map((s) => s.json.job_id);
    client.send({ action: "subscribe", job_ids: jobIds });
    const lines = Array.from({ length: 4 }, (_, i) => JSON.stringify({ custom_id: `line-${i}`, body: { model, prompt: `Name ${i + 2} rivers.`, max_tokens: 12 } }));
    const batch = await api("POST", "/v1/batches", lines.join("\n"));
    const openai = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.endpoints.http}/v1`, maxRetries: 0 });
    const input = Array.from({ length: 3 }, (_, i) => JSON.stringify({ custom_id: `oa-${i}`, method: "POST", url: "/v1/chat/completions", body: { model, messages: [{ role: "user", content: `Say ${i}.` }], max_tokens: 8 } }));
    const file = await openai.files.create({ file: await toFile(Buffer.from(input.join("\n") + "\n"), "input.jsonl"), purpose: "batch" });
    const created = await openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });

    const events = await client.waitUntil((all) => jobIds.every((id) => all.some((e) => finalTypes.has(e.type) && (e.job as { job_id: string }).job_id === id)), 120_000);
    const views = await Promise.all(jobIds.map(async (id) => (await api("GET", `/v1/jobs/${id}`)).json));
    const batchId: string = batch.json.batch_id;
    await pollUntil("the JSON-lines batch to complete", async () => ((await api("GET", `/v1/batches/${batchId}`)).json.status === "completed" ? true : undefined), 120_000);
    const results = (await api("GET", `/v1/batches/${batchId}/results`)).text.trim().split("\n").map((l) => JSON.parse(l));
    const done = await pollUntil("the OpenAI batch to complete", async () => {
      const seen = await openai.batches.retrieve(created.id);
      return ["completed", "failed", "expired", "cancelled"].includes(seen.status) ? seen : undefined;
    }, 180_000);
    const output = (await (await openai.files.content(done.output_file_id ?? "")).text()).trim().split("\n").map((l) => JSON.parse(l));
    client.close();

    // Assess: GET and the final event show the same breakdown.
    expect(submitted.map((s) => s.status)).toEqual(Array(6).fill(202));
    for (const view of views) {
      expect(view.status).toBe("SUCCEEDED");
      expectComplete(view.breakdown, view.result.prompt_tokens, view.result.completion_tokens);
      expect(view.breakdown.gpu_batch.id).toBe(view.gpu_batch.gpu_batch_id);
      const final = events.find((e) => finalTypes.has(e.type) && (e.job as { job_id: string }).job_id === view.job_id);
      expect((final?.job as { breakdown?: unknown }).breakdown).toEqual(view.breakdown);
    }
    // The batch results: each line with its breakdown.
    expect(results).toHaveLength(4);
    for (const line of results) expectComplete(line.breakdown, line.result.prompt_tokens, line.result.completion_tokens);
    // The OpenAI output: OpenAI's line, and ours beside it.
    expect(done.status).toBe("completed");
    expect(output).toHaveLength(3);
    for (const line of output) {
      expect(line.response.body.object).toBe("chat.completion");
      expect(line.response.body).not.toHaveProperty("batchline");
      expectComplete(line.batchline?.breakdown, line.response.body.usage.prompt_tokens, line.response.body.usage.completion_tokens);
    }

    // Each GPU call's jobs share its copy's cost over the call's time: price × gpu_ms, within 1%.
    const all: JobBreakdown[] = [...views.map((v) => v.breakdown), ...results.map((r) => r.breakdown), ...output.map((l) => l.batchline.breakdown)];
    const byBatch = Map.groupBy(all, (b) => b.gpu_batch.id);
    const whole = [...byBatch.values()].filter((members) => members.length === members[0]?.gpu_batch.sequences);
    expect(whole.length).toBeGreaterThan(0);
    expect(Math.max(...whole.map((members) => members.length))).toBeGreaterThan(1);
    for (const members of whole) {
      const first = members[0] as JobBreakdown;
      // One static batch is one call: its jobs all held the copy for the same time.
      for (const m of members) expect(m.gpu_ms).toBe(first.gpu_ms);
      const copyCost = (first.copy.usd_per_hour / 3600) * (first.gpu_ms / 1000);
      const shares = members.reduce((sum, m) => sum + m.cost.usd, 0);
      expect(Math.abs(shares - copyCost) / copyCost).toBeLessThan(0.01);
    }
  });
});

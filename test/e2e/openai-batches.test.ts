import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { toFile } from "openai";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "#shared/core/api-keys";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";

// The official `openai` client against the embedded stack, changing only baseURL and apiKey:
// files.create, batches.create, retrieve until it ends, files.content of its output; and the
// tenant's webhook endpoint, a real receiver on 127.0.0.1, told of each batch's end, signed as
// Standard Webhooks says (verified with the standardwebhooks package).
const stage = `e2eo${Math.random().toString(36).slice(2, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-e2e-openai-"));
const apiKey = generateApiKey();
let stack: StackProcess;
let client: OpenAI;
let receiver: Server;
let webhookSecret: string;
/** The webhook deliveries the receiver got: their headers and body. */
const deliveries: { headers: Record<string, string>; body: string }[] = [];

const LINES = 1000;
const line = (i: number) =>
  JSON.stringify({ custom_id: `req-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "llama-2-7b", messages: [{ role: "user", content: `Say ${i}.` }], max_tokens: 8 } });

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not done after ${timeoutMs} ms; last: ${JSON.stringify(value).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  stack = await startStackProcess({ stage, dataDir, apiKey }, await stackPorts());
  client = new OpenAI({ apiKey, baseURL: `${stack.http}/v1`, maxRetries: 0 });
  receiver = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      deliveries.push({ headers: request.headers as Record<string, string>, body });
      response.writeHead(204).end();
    });
  });
  receiver.listen(0, "127.0.0.1");
  await once(receiver, "listening");
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  const registered = await fetch(`${stack.http}/v1/webhooks`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: JSON.stringify({ url }) });
  expect(registered.status).toBe(201);
  webhookSecret = ((await registered.json()) as { secret: string }).secret;
}, 180_000);

/** The batch's webhook event, once delivered, verified with the endpoint's secret. */
async function webhookOf(batchId: string): Promise<{ type: string; data: { id: string } }> {
  const events = await until("the batch's webhook", async () => deliveries.map((d) => new Webhook(webhookSecret).verify(d.body, d.headers) as { type: string; data: { id: string } }), (all) => all.some((e) => e.data.id === batchId), 60_000);
  return events.find((e) => e.data.id === batchId) as { type: string; data: { id: string } };
}

afterAll(async () => {
  receiver?.closeAllConnections();
  receiver?.close();
  await stack?.interrupt();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("OpenAI batches through the official client", () => {
  it("runs a 1,000-line chat batch to completed, every line in its output with its custom_id and a chat.completion", async () => {
    // Prepare
    const text = Array.from({ length: LINES }, (_, i) => line(i)).join("\n") + "\n";
    const file = await client.files.create({ file: await toFile(Buffer.from(text), "input.jsonl"), purpose: "batch" });

    // Act
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const startedAt = Date.now();
    const running = await until("in_progress", () => client.batches.retrieve(created.id), (b) => b.status !== "validating", 60_000);
    const ingestMs = Date.now() - startedAt;
    const done = await until("completed", () => client.batches.retrieve(created.id), (b) => ["completed", "failed", "expired", "cancelled"].includes(b.status), 540_000);
    const output = await (await client.files.content(done.output_file_id ?? "")).text();

    // Assess
    expect(created).toMatchObject({ object: "batch", status: "validating", endpoint: "/v1/chat/completions", input_file_id: file.id, completion_window: "24h" });
    expect(running.status).toBe("in_progress");
    expect(done).toMatchObject({ status: "completed", error_file_id: null, request_counts: { total: LINES, completed: LINES, failed: 0 } });
    const lines = output.trim().split("\n").map((l) => JSON.parse(l) as { custom_id: string; error: unknown; response: { status_code: number; body: { object: string; choices: unknown[] } } });
    expect(lines.map((l) => l.custom_id)).toEqual(Array.from({ length: LINES }, (_, i) => `req-${i}`));
    for (const l of lines) {
      expect(l.error).toBeNull();
      expect(l.response.status_code).toBe(200);
      expect(l.response.body.object).toBe("chat.completion");
      expect(l.response.body.choices).toHaveLength(1);
    }
    expect(await webhookOf(created.id)).toMatchObject({ type: "batch.completed", data: { id: created.id } });
    console.log(`ingest of ${LINES} lines: ${ingestMs} ms (validating → in_progress, polled every 500 ms)`);
  }, 600_000);

  it("cancels a second batch: cancelling, then cancelled", async () => {
    const text = Array.from({ length: 200 }, (_, i) => line(i)).join("\n") + "\n";
    const file = await client.files.create({ file: await toFile(Buffer.from(text), "cancel.jsonl"), purpose: "batch" });
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await until("in_progress", () => client.batches.retrieve(created.id), (b) => b.status !== "validating", 60_000);

    const cancelling = await client.batches.cancel(created.id);
    const done = await until("cancelled", () => client.batches.retrieve(created.id), (b) => b.status === "cancelled", 120_000);

    expect(["cancelling", "finalizing", "cancelled"]).toContain(cancelling.status);
    expect(done).toMatchObject({ status: "cancelled", cancelling_at: expect.any(Number), cancelled_at: expect.any(Number) });
    expect(done.request_counts?.total).toBe(200);
    const list = await client.batches.list({ limit: 2 });
    expect(list.data.map((b) => b.id)).toContain(created.id);
    expect(await webhookOf(created.id)).toMatchObject({ type: "batch.cancelled", data: { id: created.id } });
  }, 300_000);
});

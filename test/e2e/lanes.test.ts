import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "#shared/core/api-keys";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";

// Priority lanes on the embedded stack, started as `npm start` starts it (the emulator at real
// time): a job submitted alone while a batch file drains goes to the interactive lane's queue,
// its own event source mapping delivers it to a fresh batcher, and the batchers holding the batch
// lane's work yield it the next room that frees, so it starts before the batch's remaining jobs.
const stage = `e2el${Math.random().toString(36).slice(2, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-e2e-lanes-"));
const apiKey = generateApiKey();
let stack: StackProcess;
let ddb: DynamoDBDocumentClient;

/** Enough 256-token jobs to fill the llama-2-7b copy (128 sequences) several times over. */
const BATCH_JOBS = 600;

async function api(method: string, path: string, body?: string) {
  const response = await fetch(`${stack.http}${path}`, { method, headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body });
  return { status: response.status, json: (await response.json()) as any };
}

/** Asks `probe` every `everyMs` until it gives a value, failing past the deadline. */
async function pollEvery<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}

async function jobsOfBatch(batchId: string): Promise<{ job_id: string; started_at?: string }[]> {
  const items: { job_id: string; started_at?: string }[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb.send(new ScanCommand({ TableName: `batchline-${stage}-jobs`, FilterExpression: "batch_id = :b", ExpressionAttributeValues: { ":b": batchId }, ExclusiveStartKey: start }));
    items.push(...((out.Items ?? []) as { job_id: string; started_at?: string }[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

beforeAll(async () => {
  stack = await startStackProcess({ stage, dataDir, apiKey }, await stackPorts());
  ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: stack.dynamodb, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }));
}, 180_000);

afterAll(async () => {
  ddb?.destroy();
  await stack?.interrupt();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("priority lanes on the embedded stack", () => {
  it("starts an interactive job submitted while a batch file drains before the batch's remaining jobs", async (context) => {
    const lines = Array.from({ length: BATCH_JOBS }, (_, i) =>
      JSON.stringify({ custom_id: `b${i}`, body: { model: "llama-2-7b", prompt: `Batch document ${i}: summarise the quarterly report.`, max_tokens: 256 } }),
    );
    const batch = await api("POST", "/v1/batches", lines.join("\n"));
    expect(batch.status).toBe(202);
    const batchId: string = batch.json.batch_id;

    // Draining: the copy full of the batch's work, most of it still waiting in the batch lane.
    await pollEvery(async () => {
      const { json } = await api("GET", `/v1/batches/${batchId}`);
      return json.request_counts.running + json.request_counts.succeeded >= 128 ? json : undefined;
    }, "the batch to fill the copy", 120_000);

    const submitted = await api("POST", "/v1/jobs", JSON.stringify({ model: "llama-2-7b", prompt: "Quick question: what is a queue?", max_tokens: 32 }));
    expect(submitted.status).toBe(202);
    const interactive = await pollEvery(async () => {
      const { json } = await api("GET", `/v1/jobs/${submitted.json.job_id}`);
      return json.status === "SUCCEEDED" ? json : undefined;
    }, "the interactive job to succeed", 60_000);
    const submittedAt = Date.parse(interactive.timings.submitted_at);
    const startedAt = Date.parse(interactive.timings.started_at);

    // Every batch job that had not started when the interactive one was submitted.
    await pollEvery(async () => {
      const { json } = await api("GET", `/v1/batches/${batchId}`);
      return json.status === "completed" ? json : undefined;
    }, "the batch to complete", 240_000, 1000);
    const remaining = (await jobsOfBatch(batchId)).map((j) => Date.parse(j.started_at ?? "")).filter((t) => t > submittedAt);
    const before = remaining.filter((t) => t < startedAt);
    context.annotate(`interactive waited ${startedAt - submittedAt} ms for room; ${before.length} of the ${remaining.length} batch jobs not started at its submit started before it`);

    expect(remaining.length).toBeGreaterThan(200);
    // Room that frees before the batch holders next read the ledger (every 500 ms) still goes to
    // batch work: with jobs this alike the copy frees a wave at a time, so up to one copy's
    // worth (its 128 sequences) may start first. In one queue it would have waited for them all.
    expect(before.length).toBeLessThanOrEqual(128);
    expect(before.length).toBeLessThan(remaining.length / 2);
    expect(startedAt - submittedAt).toBeLessThan(3_000);
  }, 420_000);
});

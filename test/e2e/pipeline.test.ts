import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { DynamoDBClient, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, ScanCommand as DocScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey, hashApiKey } from "#shared/core/api-keys";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";
import { EventClient, type Event } from "../helpers/ws-client.ts";

// The whole pipeline on the embedded stack, started as `npm start` starts it: HTTP submit → SQS →
// event source mapping → batcher → SageMaker emulator (real time) → DynamoDB → WebSocket.
const stage = `e2e${Math.random().toString(36).slice(2, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-e2e-"));
const apiKey = generateApiKey();
const otherKey = generateApiKey();
const finalTypes = new Set(["job.succeeded", "job.failed", "job.cancelled", "job.expired"]);
let ports: Record<string, string>;
let stack: StackProcess;
let ddb: DynamoDBDocumentClient;
const table = (name: string) => `batchline-${stage}-${name}`;

async function api(method: string, path: string, body?: unknown, key = apiKey) {
  const response = await fetch(`${stack.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

const finalsFor = (events: readonly Event[], ids: ReadonlySet<string>) =>
  new Map(events.filter((e) => finalTypes.has(e.type)).map((e) => [(e.job as { job_id: string }).job_id, e] as const).filter(([id]) => ids.has(id)));

async function itemCount(name: string): Promise<number> {
  const out = await ddb.send(new ScanCommand({ TableName: table(name), Select: "COUNT" }));
  return out.Count ?? 0;
}

beforeAll(async () => {
  ports = await stackPorts();
  stack = await startStackProcess({ stage, dataDir, apiKey }, ports);
  ddb = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: stack.dynamodb, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }),
  );
  await ddb.send(new PutItemCommand({
    TableName: table("api-keys"),
    Item: { key_hash: { S: hashApiKey(otherKey) }, tenant: { S: "globex" }, name: { S: "e2e" }, created_at: { S: new Date().toISOString() } },
  }));
});

afterAll(async () => {
  await stack?.interrupt();
  ddb?.destroy();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the pipeline on the embedded stack", () => {
  let firstJobId = "";

  it("prints the endpoints and the development key when ready", () => {
    expect(stack.output()).toContain(stack.http);
    expect(stack.output()).toContain(stack.ws);
    expect(stack.output()).toContain(apiKey);
  });

  it("lists the routes with their endpoint, inference components and limits", async () => {
    const { status, json } = await api("GET", "/v1/models");
    expect(status).toBe(200);
    expect(json.data[0]).toMatchObject({
      model: "llama-2-7b",
      limits: { max_tokens: 2048, max_prompt_tokens: 3072 },
      inference_components: [{ name: "llama-2-7b-ic", endpoint: "batchline-h100", engine: "lmi-rolling" }],
    });
  });

  it("returns a job submitted over HTTP on the WebSocket, and GET and DynamoDB agree", async () => {
    const client = await EventClient.connect(stack.ws, apiKey);
    const submitted = await api("POST", "/v1/jobs", { model: "llama-2-7b", prompt: "Write a haiku about queues.", max_tokens: 16 });
    expect(submitted.status).toBe(202);
    expect(submitted.json).toEqual({
      job_id: expect.stringMatching(/^job_/),
      status: "QUEUED",
      // Alone on an idle route: first in line, to start at once.
      queue: { lane: "interactive", position: 1, estimated_start_at: expect.any(String), estimated_finish_at: expect.any(String) },
    });
    const jobId: string = submitted.json.job_id;
    firstJobId = jobId;
    client.send({ action: "subscribe", job_ids: [jobId] });
    const events = await client.waitUntil((e) => finalsFor(e, new Set([jobId])).size === 1);
    client.close();

    const final = finalsFor(events, new Set([jobId])).get(jobId) as Event & { job: any };
    expect(final.type).toBe("job.succeeded");
    expect(final.job.result).toMatchObject({ completion_tokens: 16, finish_reason: "length" });
    expect(final.job.result.text.split(" ").length).toBe(16);
    expect(final.job.result.prompt_tokens).toBeGreaterThan(5);

    const got = await api("GET", `/v1/jobs/${jobId}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ job_id: jobId, status: "SUCCEEDED", result: final.job.result, gpu_batch: { gpu_batch_size: expect.any(Number) }, window: { window_size: expect.any(Number) } });
    expect(Date.parse(got.json.timings.finished_at)).toBeGreaterThanOrEqual(Date.parse(got.json.timings.started_at));
    // Queued (1), claimed (2), finished (3): GET shows the version of the final event.
    expect(got.json.version).toBe(3);
    expect(final.job.version).toBe(3);

    const item = await ddb.send(new GetCommand({ TableName: table("jobs"), Key: { job_id: jobId } }));
    expect(item.Item).toMatchObject({ job_id: jobId, tenant: "dev", status: "SUCCEEDED", attempt: 1, version: 3, result: final.job.result });
    expect(item.Item?.expires_at).toBeGreaterThan(Date.now() / 1000);
  });

  it("answers a submit over the WebSocket with job.queued, then pushes the result", async () => {
    const client = await EventClient.connect(stack.ws, apiKey);
    client.send({ action: "submit", request_id: "r-1", job: { model: "llama-2-7b", messages: [{ role: "user", content: "Hi!" }], max_tokens: 8 } });
    const events = await client.waitUntil((e) => e.some((x) => x.type === "job.succeeded"));
    client.close();
    expect(events[0]).toMatchObject({ type: "job.queued", request_id: "r-1", job: { status: "QUEUED" } });
    expect(events.map((e) => e.type)).toContain("job.running");
  });

  it("runs 200 jobs submitted at once, in windows of more than one job", async () => {
    const client = await EventClient.connect(stack.ws, apiKey);
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => api("POST", "/v1/jobs", { model: "llama-2-7b", prompt: `Job ${i}: say something.`, max_tokens: 24 })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(202));
    const ids: string[] = responses.map((r) => r.json.job_id);
    client.send({ action: "subscribe", job_ids: ids.slice(0, 100) });
    client.send({ action: "subscribe", job_ids: ids.slice(100) });
    const events = await client.waitUntil((e) => finalsFor(e, new Set(ids)).size === 200, 120_000);
    client.close();
    expect([...finalsFor(events, new Set(ids)).values()].map((e) => e.type)).toEqual(Array(200).fill("job.succeeded"));

    const jobs = (await ddb.send(new DocScanCommand({ TableName: table("jobs") }))).Items ?? [];
    const ours = jobs.filter((j) => ids.includes(String(j.job_id)));
    expect(ours).toHaveLength(200);
    const gpuBatchSizes = ours.map((j) => Number(j.gpu_batch_size));
    expect(Math.max(...gpuBatchSizes)).toBeGreaterThan(1);
    expect(new Set(ours.map((j) => j.gpu_batch_id)).size).toBeLessThan(200);
  });

  it("runs a batch file and pages its results in file order", async () => {
    const lines = Array.from({ length: 25 }, (_, i) => JSON.stringify({ custom_id: `req-${i}`, body: { model: "llama-2-7b", prompt: `Line ${i}`, max_tokens: 4 } }));
    const accepted = await api("POST", "/v1/batches", lines.join("\n"));
    expect(accepted.status).toBe(202);
    expect(accepted.json.request_counts).toMatchObject({ total: 25, queued: 25 });
    const batchId: string = accepted.json.batch_id;

    const client = await EventClient.connect(stack.ws, apiKey);
    client.send({ action: "subscribe", batch_id: batchId });
    await client.waitUntil((e) => e.some((x) => x.type === "batch.progress" && (x.request_counts as { succeeded: number }).succeeded === 25));
    client.close();

    const described = await api("GET", `/v1/batches/${batchId}`);
    expect(described.json).toMatchObject({ batch_id: batchId, status: "completed", request_counts: { total: 25, succeeded: 25 } });
    const listed = await api("GET", "/v1/batches?limit=5");
    expect(listed.json.data.map((b: { batch_id: string }) => b.batch_id)).toContain(batchId);

    const customIds: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await api("GET", `/v1/batches/${batchId}/results?limit=10${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toContain("application/x-ndjson");
      for (const line of page.text.trim().split("\n")) {
        const parsed = JSON.parse(line);
        expect(parsed).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: 4 } });
        customIds.push(parsed.custom_id);
      }
      cursor = page.headers.get("x-next-cursor");
    } while (cursor);
    expect(customIds).toEqual(lines.map((_, i) => `req-${i}`));
  });

  it("rejects bad input with a 4xx that names the problem, and leaves nothing behind", async () => {
    const before = [await itemCount("jobs"), await itemCount("batches"), await itemCount("idempotency-keys")];
    const cases: [string, string, unknown, number, RegExp][] = [
      ["POST", "/v1/jobs", "{not json", 400, /^body: malformed JSON/],
      ["POST", "/v1/jobs", "", 400, /^body: is required/],
      ["POST", "/v1/jobs", { prompt: "x", max_tokens: 4 }, 400, /^model: is required$/],
      ["POST", "/v1/jobs", { model: "llama-2-7b", prompt: "x", max_tokens: "4" }, 400, /^max_tokens: must be an integer$/],
      ["POST", "/v1/jobs", { model: "gpt-9", prompt: "x", max_tokens: 4 }, 400, /^model: unknown model "gpt-9"; known models: llama-2-7b/],
      ["POST", "/v1/jobs", { model: "llama-2-7b", prompt: "x", max_tokens: 99_999, idempotency_key: "never" }, 400, /^max_tokens: must be at most 2048/],
      ["POST", "/v1/jobs", { model: "llama-2-7b", prompt: "word ".repeat(4000), max_tokens: 4 }, 400, /^prompt: \d+ tokens is over the 3072-token prompt limit/],
      ["POST", "/v1/batches", "", 400, /^batch file is empty/],
      ["POST", "/v1/batches", `${JSON.stringify({ custom_id: "a", body: { model: "llama-2-7b", prompt: "x", max_tokens: 1 } })}\n{"custom_id":"b"}`, 400, /^line 2: body: is required$/],
      ["GET", "/v1/jobs/job_doesnotexist", undefined, 404, /^job job_doesnotexist not found$/],
      ["GET", "/v1/batches/x/results?limit=0", undefined, 400, /^limit: must be an integer between 1 and 1000$/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const response = await api(method, path, body);
      expect({ path, body, status: response.status }).toEqual({ path, body, status });
      expect(response.json.error.message).toMatch(message);
    }
    const unauthenticated = await fetch(`${stack.http}/v1/jobs/x`);
    expect(unauthenticated.status).toBe(401);
    expect((await api("GET", "/v1/models", undefined, "bl_wrong")).status).toBe(401);
    expect([await itemCount("jobs"), await itemCount("batches"), await itemCount("idempotency-keys")]).toEqual(before);
  });

  it("keeps each tenant to its own jobs and batches", async () => {
    const line = JSON.stringify({ custom_id: "a", body: { model: "llama-2-7b", prompt: "x", max_tokens: 1 } });
    const batchId: string = (await api("POST", "/v1/batches", line)).json.batch_id;
    for (const path of [`/v1/jobs/${firstJobId}`, `/v1/batches/${batchId}`, `/v1/batches/${batchId}/results`]) {
      const response = await api("GET", path, undefined, otherKey);
      expect({ path, status: response.status, code: response.json.error.code }).toEqual({ path, status: 404, code: "not_found" });
    }
    expect((await api("GET", "/v1/batches", undefined, otherKey)).json.data).toEqual([]);

    const intruder = await EventClient.connect(stack.ws, otherKey);
    intruder.send({ action: "subscribe", job_ids: [firstJobId] });
    intruder.send({ action: "subscribe", batch_id: batchId });
    const events = await intruder.waitUntil((e) => e.length === 2);
    intruder.close();
    expect(events.map((e) => [e.type, (e.error as { code: string }).code])).toEqual([["error", "not_found"], ["error", "not_found"]]);
    await expect(EventClient.connect(stack.ws, "bl_not_a_key")).rejects.toThrow("upgrade refused: 401");
  });

  it("cancels a running job over HTTP and a batch's unfinished jobs, telling subscribers", async () => {
    const client = await EventClient.connect(stack.ws, apiKey);
    client.send({ action: "submit", job: { model: "llama-2-7b", prompt: "a long story", max_tokens: 2048 } });
    const [queued] = await client.waitUntil((e) => e.some((x) => x.type === "job.running"));
    const jobId = (queued?.job as { job_id: string }).job_id;
    const cancelled = await api("DELETE", `/v1/jobs/${jobId}`);
    expect(cancelled.json).toMatchObject({ job_id: jobId, status: "CANCELLED", error: { code: "cancelled" } });
    await client.waitUntil((e) => e.some((x) => x.type === "job.cancelled"));
    expect((await api("DELETE", `/v1/jobs/${jobId}`)).status).toBe(200);
    expect((await api("DELETE", `/v1/jobs/${jobId}`, undefined, otherKey)).status).toBe(404);

    const lines = Array.from({ length: 3 }, (_, i) => JSON.stringify({ custom_id: `c${i}`, body: { model: "llama-2-7b", prompt: "long", max_tokens: 2048 } }));
    const batchId: string = (await api("POST", "/v1/batches", lines.join("\n"))).json.batch_id;
    const view = await api("POST", `/v1/batches/${batchId}/cancel`);
    expect(view.json).toMatchObject({ batch_id: batchId, status: "completed", request_counts: { total: 3, cancelled: 3 } });
    client.close();
    expect((await api("GET", `/v1/jobs/${jobId}`)).json.status).toBe("CANCELLED");
  });

  it("lets ops change a route's live settings with an admin key, and no one else", async () => {
    const changed = await api("PUT", "/v1/routes/llama-2-7b/settings", { max_in_flight_per_copy: 96 });
    expect(changed.status).toBe(200);
    expect(changed.json).toMatchObject({ model: "llama-2-7b", source: "stored", settings: { max_in_flight_per_copy: 96, dispatch: "adaptive" } });
    expect((await api("GET", "/v1/routes/llama-2-7b/settings")).json.settings.max_in_flight_per_copy).toBe(96);
    const refused = await api("PUT", "/v1/routes/llama-2-7b/settings", { max_in_flight_per_copy: 1 }, otherKey);
    expect([refused.status, refused.json.error.code]).toEqual([403, "forbidden"]);
    const invalid = await api("PUT", "/v1/routes/llama-2-7b/settings", { max_in_flight_per_copy: 1000 });
    expect([invalid.status, invalid.json.error.field]).toEqual([400, "max_in_flight_per_copy"]);
    const client = await EventClient.connect(stack.ws, apiKey);
    client.send({ action: "submit", job: { model: "llama-2-7b", prompt: "with new settings", max_tokens: 4 } });
    await client.waitUntil((e) => e.some((x) => x.type === "job.succeeded"));
    client.close();
  });

  it("creates and rotates a tenant's key with npm run tenant, against the running stack", async () => {
    const tenantTool = async (...args: string[]) => {
      const env = { ...process.env, BATCHLINE_STAGE: stage, BATCHLINE_DYNAMODB_PORT: ports.BATCHLINE_DYNAMODB_PORT };
      const { stdout } = await promisify(execFile)(process.execPath, ["tools/tenant.ts", ...args], { env, timeout: 60_000 });
      return stdout.trim().split("\n").at(-1) ?? "";
    };
    const first = await tenantTool("create", "initech");
    expect((await api("GET", "/v1/models", undefined, first)).status).toBe(200);
    const second = await tenantTool("rotate", "initech");
    expect((await api("GET", "/v1/models", undefined, first)).status).toBe(401);
    expect((await api("GET", "/v1/models", undefined, second)).status).toBe(200);
    await expect(promisify(execFile)(process.execPath, ["tools/tenant.ts", "create", "initech"], {
      env: { ...process.env, BATCHLINE_STAGE: stage, BATCHLINE_DYNAMODB_PORT: ports.BATCHLINE_DYNAMODB_PORT },
    })).rejects.toMatchObject({ stderr: expect.stringContaining("tenant initech already exists") });

    await tenantTool("quota", "initech", "--max-jobs-in-flight", "1", "--tokens-per-minute", "100000");
    const long = { model: "llama-2-7b", prompt: "a long one", max_tokens: 2048 };
    const held = await api("POST", "/v1/jobs", long, second);
    expect(held.status).toBe(202);
    const refused = await api("POST", "/v1/jobs", long, second);
    expect([refused.status, refused.json.error.code, refused.headers.get("retry-after")]).toEqual([429, "rate_limited", "5"]);
    expect((await api("DELETE", `/v1/jobs/${held.json.job_id}`, undefined, second)).status).toBe(200);
    expect((await api("POST", "/v1/jobs", { ...long, max_tokens: 4 }, second)).status).toBe(202);
  });

  it("opens a WebSocket once with a one-time ticket, keeping the API key out of the URL", async () => {
    const issued = await api("POST", "/v1/ws-tickets");
    expect(issued.status).toBe(201);
    const socket = await EventClient.connectWithTicket(stack.ws, issued.json.ticket);
    socket.send({ action: "subscribe", job_ids: [firstJobId] });
    await socket.waitUntil((e) => e.some((x) => x.type === "job.succeeded"));
    socket.close();
    await expect(EventClient.connectWithTicket(stack.ws, issued.json.ticket)).rejects.toThrow("upgrade refused: 401");
  });

  it("stops cleanly on Ctrl-C and keeps every job across a restart", async () => {
    expect(await stack.interrupt()).toBe(0);
    stack = await startStackProcess({ stage, dataDir, apiKey }, ports);
    const got = await api("GET", `/v1/jobs/${firstJobId}`);
    expect(got.json).toMatchObject({ job_id: firstJobId, status: "SUCCEEDED" });
    const client = await EventClient.connect(stack.ws, apiKey);
    client.send({ action: "submit", job: { model: "llama-2-7b", prompt: "after the restart", max_tokens: 4 } });
    await client.waitUntil((e) => e.some((x) => x.type === "job.succeeded"));
    client.close();
    // A stop and a fresh start: each bundles the functions again, slow on a busy machine.
  }, 300_000);
});

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvokeEndpointWithResponseStreamCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { generateApiKey } from "#shared/core/api-keys";
import { encodeRequests, generationInputOf } from "#shared/core/engine-codec";
import { localClientConfig } from "../helpers/local-aws.ts";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";
import { EventClient, type Event } from "../helpers/ws-client.ts";

// A streamed job end to end on the embedded stack, started as `npm start` starts it: WebSocket
// submit → SQS → batcher → InvokeEndpointWithResponseStream on the emulator (real time) →
// job.token events to the submitter's WebSocket.
const stage = `e2es${Math.random().toString(36).slice(2, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-e2e-stream-"));
const apiKey = generateApiKey();
const catalog = loadRouteCatalog("infra/routes.yml");
const route = catalog.routes.get("llama-2-7b");
const component = route?.components[0];
let stack: StackProcess;
let sagemaker: SageMakerRuntimeClient;

const request = { model: "llama-2-7b", prompt: "Tell me, at length, how a queue of requests becomes batches on a GPU.", max_tokens: 64, stream: true };
const finalTypes = new Set(["job.succeeded", "job.failed", "job.cancelled", "job.expired"]);
type TokenEvent = Event & { job_id: string; version: number; attempt: number; index: number; text: string; tokens: number; restarted?: true };
const tokensOf = (events: readonly Event[]) => events.filter((e) => e.type === "job.token") as TokenEvent[];
const finalOf = (events: readonly Event[]) => events.find((e) => finalTypes.has(e.type)) as (Event & { job: any }) | undefined;

/**
 * The engine's own time to first token for the job's request, the body the batcher sends, straight
 * through the SDK with nothing in front: the best of three, as the pipeline's job gets an idle engine too.
 */
async function engineTimeToFirstTokenMs(): Promise<number> {
  if (!route || !component) throw new Error("no llama-2-7b route");
  const [body] = encodeRequests(component, [generationInputOf(request, route.chat_template, component.format)], { stream: true });
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const out = await sagemaker.send(new InvokeEndpointWithResponseStreamCommand({
      EndpointName: component.endpointName, InferenceComponentName: component.name, ContentType: "application/json", Body: new TextEncoder().encode(body),
    }));
    let first: number | undefined;
    for await (const event of out.Body ?? []) if (event.PayloadPart?.Bytes && first === undefined) first = performance.now() - started;
    if (first !== undefined) times.push(first);
  }
  return Math.min(...times);
}

/** Submits a streamed job over the WebSocket; resolves when its first token arrives, with that instant. */
async function submitStreamed(client: EventClient, requestId: string): Promise<{ firstTokenAtMs: number }> {
  client.send({ action: "submit", request_id: requestId, job: request });
  await client.waitUntil((events) => tokensOf(events).length > 0);
  return { firstTokenAtMs: Date.now() };
}

/** Waits for the job's final event, then closes the client: every event it got, and the final one. */
async function eventsToTheEnd(client: EventClient) {
  const events = await client.waitUntil((e) => finalOf(e) !== undefined);
  client.close();
  return { events, final: finalOf(events) };
}

beforeAll(async () => {
  stack = await startStackProcess({ stage, dataDir, apiKey }, await stackPorts());
  sagemaker = new SageMakerRuntimeClient({ ...localClientConfig(stack.sagemaker), maxAttempts: 1 });
});

afterAll(async () => {
  sagemaker?.destroy();
  await stack?.interrupt();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("a streamed job on the embedded stack", () => {
  it("reaches its WebSocket client token by token, the first within the engine's time to first token + 300 ms, and the final event carries the whole text", async () => {
    // Prepare
    const ttftMs = await engineTimeToFirstTokenMs();
    const client = await EventClient.connect(stack.ws, apiKey);

    // Act
    const { firstTokenAtMs } = await submitStreamed(client, "s-1");
    const { events, final } = await eventsToTheEnd(client);

    // Assess: timed from the job's start (its claim), on this machine's one clock
    expect(final?.type).toBe("job.succeeded");
    const firstTokenMs = firstTokenAtMs - Date.parse(final?.job.timings.started_at);
    expect(firstTokenMs).toBeLessThanOrEqual(ttftMs + 300);
    const tokens = tokensOf(events);
    expect(tokens.map((t) => t.index)).toEqual(tokens.map((_, i) => i));
    expect(tokens.every((t) => t.job_id === final?.job.job_id && t.attempt === 1 && t.restarted === undefined)).toBe(true);
    expect(tokens.map((t) => t.text).join("")).toBe(final?.job.result.text);
    expect(tokens.at(-1)?.tokens).toBe(64);
    // Ordered: running, the tokens, the final event; each state's version above the one before, the tokens at the claim's.
    expect(events.map((e) => e.type).filter((t) => t !== "job.token")).toEqual(["job.queued", "job.running", "job.succeeded"]);
    expect(events.flatMap((e) => (e.type === "job.token" ? [] : [(e.job as { version: number }).version]))).toEqual([1, 2, 3]);
    expect(tokens.every((t) => t.version === 2)).toBe(true);
    expect(client.applied).toEqual(events);
    expect(events.findIndex((e) => e.type === "job.succeeded")).toBeGreaterThan(events.findLastIndex((e) => e.type === "job.token"));
    // 64 tokens take the engine about 0.4 s: a frame per 50 ms and the last one, not a frame per token.
    expect(tokens.length).toBeLessThan(16);
  });

  it("tells the client when a stream that broke starts again, and the final text is the retry's", async () => {
    // Prepare: every stream breaks halfway until the faults are cleared
    await fetch(`${stack.sagemaker}/_emulator/faults`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ stream_error_fraction: 1, components: [component?.name] }),
    });
    const client = await EventClient.connect(stack.ws, apiKey);

    // Act: the first attempt's call has drawn its fault once its first token is here
    await submitStreamed(client, "s-2");
    await fetch(`${stack.sagemaker}/_emulator/faults`, { method: "DELETE" });
    const { events, final } = await eventsToTheEnd(client);

    // Assess
    expect(final?.type).toBe("job.succeeded");
    const tokens = tokensOf(events);
    const first = tokens.filter((t) => t.attempt === 1);
    const retry = tokens.filter((t) => t.attempt === 2);
    expect(first.length).toBeGreaterThan(0);
    expect(first.at(-1)?.tokens).toBeLessThan(64);
    expect(retry[0]).toMatchObject({ index: 0, restarted: true });
    // The retry's claim moved the job's version on: the first attempt's tokens are older than any of the retry's.
    const versions = (attempt: number) => new Set(tokens.filter((t) => t.attempt === attempt).map((t) => t.version));
    expect([...versions(1)]).toHaveLength(1);
    expect([...versions(2)]).toHaveLength(1);
    expect([...versions(2)][0]).toBeGreaterThan([...versions(1)][0] ?? Infinity);
    expect((final?.job as { version: number }).version).toBeGreaterThan([...versions(2)][0] ?? Infinity);
    expect(retry.map((t) => t.index)).toEqual(retry.map((_, i) => i));
    expect(retry.map((t) => t.text).join("")).toBe(final?.job.result.text);
  });

  it("refuses a stream that is not true or false at POST /v1/jobs, naming the field", async () => {
    // Act
    const response = await fetch(`${stack.http}/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ ...request, stream: "yes" }),
    });

    // Assess
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: "invalid_request", message: "stream: must be true or false", field: "stream" } });
  });
  it("streams through the command-line tool: it submits over the WebSocket, so it sees the first token", async () => {
    // Act: the CLI as a user runs it, a child process talking to the stack's public endpoints.
    const cli = await new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ["tools/cli/main.ts", "submit", "--prompt", "A haiku about queues.", "--max-tokens", "24", "--stream"], {
        env: { ...process.env, BATCHLINE_API_KEY: apiKey, BATCHLINE_API_URL: stack.http, BATCHLINE_WS_URL: stack.ws },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, out, err }));
    });

    // Assess: queued first, then every token from index 0 in order, then the whole text.
    expect(cli.err).toBe("");
    expect(cli.code).toBe(0);
    const events = cli.out.trim().split("\n").map((line) => JSON.parse(line) as Event);
    expect(events[0]?.type).toBe("job.queued");
    const tokens = tokensOf(events);
    expect(tokens.map((t) => t.index)).toEqual(tokens.map((_, i) => i));
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.map((t) => t.text).join("")).toBe(finalOf(events)?.job.result.text);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MeterReading, readingDelta, RequestMeter } from "#local/request-meter";
import { type Stack, startStack } from "#local/stack";
import { pollUntil, uniqueSuffix } from "../helpers/local-aws.ts";
import { EventClient } from "../helpers/ws-client.ts";

// A metered embedded stack (issue 15 item 6): jobs submitted over HTTP and followed on a
// WebSocket, as a client does; the meter counts what the functions and pollers asked of AWS, at
// the stack's servers, and each invocation with its function's memory from the template.
const stage = `meter${uniqueSuffix()}`;
const meter = new RequestMeter();
let stack: Stack;

beforeAll(async () => {
  // osls offline took over 120 s to listen on the loaded 2-core machine.
  stack = await startStack({ stage, meter, offlineReadyTimeoutMs: 300_000 });
}, 400_000);

afterAll(async () => {
  await stack?.stop();
});

describe("the embedded stack's request meter", () => {
  it("counts a job's SQS, DynamoDB, @connections and HTTP API requests and its Lambda invocations", { timeout: 180_000 }, async () => {
    const { http, websocket } = stack.endpoints;
    if (!http || !websocket) throw new Error("the stack runs without its HTTP or WebSocket API");
    const events = await EventClient.connect(websocket, stack.apiKey);
    const before: MeterReading = meter.read();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${http}/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "llama-2-7b", prompt: `count me ${i}`, max_tokens: 4 }),
      });
      expect(response.status).toBe(202);
      ids.push(((await response.json()) as { job_id: string }).job_id);
    }
    events.send({ action: "subscribe", job_ids: ids });
    const succeeded = (all: readonly { type: string; job?: unknown }[]) =>
      new Set(all.filter((e) => e.type === "job.succeeded").map((e) => (e.job as { job_id: string }).job_id));
    await events.waitUntil((all) => ids.every((id) => succeeded(all).has(id)), 150_000);
    events.close();
    // An invocation is metered once it has returned: the subscribe's and the batcher's may return after the events arrived.
    const run = await pollUntil(
      async () => {
        const delta = readingDelta(meter.read(), before);
        return (delta.lambda.wsMessage?.invocations ?? 0) >= 1 && (delta.lambda.batcher?.invocations ?? 0) >= 1 ? delta : undefined;
      },
      "the subscribe's and a batcher's invocations metered",
      90_000,
      200,
    );

    expect(run.requests["apigateway-http"]).toEqual({ "POST /v1/jobs": 3 });
    const sqs = run.requests.sqs ?? {};
    expect((sqs.SendMessage ?? 0) + (sqs.SendMessageBatch ?? 0)).toBeGreaterThanOrEqual(1);
    expect(sqs.ReceiveMessage ?? 0).toBeGreaterThanOrEqual(1);
    const dynamodb = run.requests.dynamodb ?? {};
    expect((dynamodb.PutItem ?? 0) + (dynamodb.BatchWriteItem ?? 0) + (dynamodb.TransactWriteItems ?? 0)).toBeGreaterThanOrEqual(1);
    expect(dynamodb.UpdateItem ?? 0).toBeGreaterThanOrEqual(3);
    expect(run.dynamodb_capacity.write_units).toBeGreaterThanOrEqual(6);
    // Each job's events reach the subscribed connection: one post each at least.
    expect(run.requests["apigateway-websocket"]?.PostToConnection ?? 0).toBeGreaterThanOrEqual(3);
    // Invocations, with the template's memory: the jobs API at the provider's 512 MB, the batcher at 1024.
    const jobs = run.lambda.jobs;
    const batcher = run.lambda.batcher;
    expect(jobs?.invocations).toBe(3);
    expect(jobs?.gb_seconds).toBeCloseTo(((jobs?.billed_ms ?? 0) / 1000) * 0.5, 9);
    expect(batcher?.invocations).toBeGreaterThanOrEqual(1);
    expect(batcher?.gb_seconds).toBeCloseTo(((batcher?.billed_ms ?? 0) / 1000) * 1, 9);
    expect(run.lambda.wsMessage?.invocations).toBeGreaterThanOrEqual(1);
  });
});

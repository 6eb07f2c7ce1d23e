import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbFinishedJobs } from "#shared/aws/dynamodb-finished-jobs";
import { DynamoDbJobStore } from "#shared/aws/dynamodb-job-store";
import { EmulatorEngineMetrics } from "#shared/aws/emulator-engine-metrics";
import { fauxqsOldestAge, SqsQueueMetrics } from "#shared/aws/sqs-queue-metrics";
import { RetryableError } from "#shared/core/errors";
import { fullJob } from "../contract/job-store.ts";
import { createTableFromInfra, localClientConfig, localDocumentClient, startDynalite, startFauxqs, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";
import { componentOf, emulatorForTests, invokeCommand, routesCatalog } from "../helpers/sagemaker.ts";

// The embedded stack's metrics sources against the real servers: the finished-jobs index on
// dynalite (the table of infra/tables.yml), queue depths and oldest age on fauxqs, the engines
// from the emulator's stats.

describe("finished jobs from route-finished-index, on dynalite", () => {
  let server: LocalServer;
  let raw: DynamoDBClient;
  let client: DynamoDBDocumentClient;
  let jobs: DynamoDbJobStore;
  let index: DynamoDbFinishedJobs;

  beforeAll(async () => {
    server = await startDynalite();
    raw = new DynamoDBClient(localClientConfig(server.endpoint));
    client = localDocumentClient(server.endpoint);
    const tableName = await createTableFromInfra(raw, "JobsTable", `metrics-${uniqueSuffix()}-jobs`);
    jobs = new DynamoDbJobStore({ client, tableName });
    index = new DynamoDbFinishedJobs({ client, tableName });
  });
  afterAll(async () => {
    client.destroy();
    raw.destroy();
    await server.close();
  });

  const t = (s: number) => new Date(Date.UTC(2026, 10, 27, 12, 0, s));
  const placement = { gpu_batch_id: "gpu_1", gpu_batch_size: 1, component: "llama-2-7b-ic" };

  it("reads a route's jobs finished since a time, newest first, without its unfinished jobs or another route's", async () => {
    // Prepare: five finished at 10..50 s, one still running, one of another route.
    const ids = [1, 2, 3, 4, 5].map((i) => `job_${uniqueSuffix()}_${i}`);
    await jobs.create([...ids.map((id) => fullJob(id)), fullJob("job_running"), fullJob("job_other", { model: "llama-3-8b" })]);
    for (const [i, id] of ids.entries()) {
      await jobs.claim(id, placement, t(i * 10 + 5));
      await jobs.finish(id, 1, { status: "SUCCEEDED", result: { text: "ok", prompt_tokens: 37, completion_tokens: 10 + i, finish_reason: "length" } }, t(i * 10 + 10));
    }
    await jobs.claim("job_running", placement, t(1));
    await jobs.endUnfinished("job_other", { status: "FAILED", error: { code: "model_error", message: "x" } }, t(45));

    // Act
    const recent = await index.finishedSince("llama-2-7b", t(30), 100);
    const bounded = await index.finishedSince("llama-2-7b", t(0), 2);

    // Assess
    expect(recent.jobs.map((j) => j.job_id)).toEqual([ids[4], ids[3], ids[2]]);
    expect(recent.truncated).toBe(false);
    expect(recent.jobs[0]).toMatchObject({ status: "SUCCEEDED", created_at: fullJob("x").created_at, started_at: t(45).toISOString(), finished_at: t(50).toISOString(), result: { completion_tokens: 14 } });
    expect(bounded.jobs).toHaveLength(2);
    expect(bounded.truncated).toBe(true);
    expect((await index.finishedSince("llama-3-8b", t(0), 10)).jobs.map((j) => [j.job_id, j.error?.code])).toEqual([["job_other", "model_error"]]);
  });
});

describe("finished jobs on a jobs table from before the index, on dynalite", () => {
  it("answers unavailable, naming the index and what to do", async () => {
    const server = await startDynalite();
    const raw = new DynamoDBClient(localClientConfig(server.endpoint));
    const client = localDocumentClient(server.endpoint);
    try {
      const tableName = `metrics-old-${uniqueSuffix()}-jobs`;
      await raw.send(new CreateTableCommand({ TableName: tableName, BillingMode: "PAY_PER_REQUEST", AttributeDefinitions: [{ AttributeName: "job_id", AttributeType: "S" }], KeySchema: [{ AttributeName: "job_id", KeyType: "HASH" }] }));
      const read = new DynamoDbFinishedJobs({ client, tableName }).finishedSince("llama-2-7b", new Date(0), 10);
      await expect(read).rejects.toThrow(RetryableError);
      await expect(read).rejects.toThrow(/has no index route-finished-index yet .*remove \.data\//);
    } finally {
      client.destroy();
      raw.destroy();
      await server.close();
    }
  });
});

describe("queue depths and oldest message age, on fauxqs", () => {
  let server: LocalServer;
  let sqs: SQSClient;
  let metrics: SqsQueueMetrics;

  beforeAll(async () => {
    server = await startFauxqs();
    sqs = new SQSClient({ ...localClientConfig(server.endpoint), useQueueUrlAsEndpoint: false });
    metrics = new SqsQueueMetrics({ client: sqs, oldestAge: fauxqsOldestAge(server.endpoint) });
  });
  afterAll(async () => {
    sqs.destroy();
    await server.close();
  });

  it("counts visible, in-flight and delayed messages, and ages the oldest from when it was sent", async () => {
    // Prepare
    const QueueName = `metrics-${uniqueSuffix()}`;
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName }));
    const sentAt = Date.now();
    for (const body of ["a", "b", "c"]) await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "later", DelaySeconds: 60 }));
    await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, VisibilityTimeout: 60 }));
    const now = new Date(sentAt + 30_000);

    // Act
    const depth = await metrics.depth(QueueName);
    const age = await metrics.oldestMessageAgeSeconds(QueueName, now);

    // Assess
    expect(depth).toEqual({ visible: 2, inFlight: 1, delayed: 1 });
    expect(age).toBeGreaterThanOrEqual(29);
    expect(age).toBeLessThanOrEqual(30 + (Date.now() - sentAt) / 1000);
  });

  it("has no oldest age for an empty queue, and names a missing one", async () => {
    const QueueName = `metrics-empty-${uniqueSuffix()}`;
    await sqs.send(new CreateQueueCommand({ QueueName }));
    expect(await metrics.oldestMessageAgeSeconds(QueueName, new Date())).toBeUndefined();
    await expect(metrics.depth(`metrics-missing-${uniqueSuffix()}`)).rejects.toThrow(/does not exist/);
    await expect(metrics.oldestMessageAgeSeconds(`metrics-missing-${uniqueSuffix()}`, new Date())).rejects.toThrow(/HTTP 404/);
  });
});

describe("engine readings from the emulator's stats", () => {
  const catalog = routesCatalog();
  const env = emulatorForTests({ catalog, timeScale: 50 });

  it("gives each copy's state, sequences, KV tokens, GPU busy share and tokens per second, and sums the serving copies", async () => {
    // Prepare: one generation of 64 tokens on the rolling component.
    const component = componentOf(catalog, "llama-2-7b-ic");
    const source = new EmulatorEngineMetrics({ endpoint: env.emulator.url });
    await env.sagemaker.send(invokeCommand(component, { inputs: "Say something long.", parameters: { max_new_tokens: 64 } }));

    // Act
    const reading = await source.read(component, new Date(), 300_000);
    const other = await source.read(componentOf(catalog, "llama-3-8b-ic"), new Date(), 300_000);

    // Assess
    expect(reading.copies).toEqual({ serving: 1, warming: 0, draining: 0 });
    const [copy] = reading.perCopy;
    expect(copy).toMatchObject({ copy: "0", state: "serving", runningSequences: 0, kvTokens: 0 });
    expect(copy?.gpuBusyFraction).toBeGreaterThan(0);
    expect(copy?.gpuBusyFraction).toBeLessThanOrEqual(1);
    expect(copy?.generatedTokensPerSecond).toBeGreaterThan(0);
    expect(reading.gpuBusyFraction).toBe(copy?.gpuBusyFraction);
    expect(other.copies.serving).toBe(componentOf(catalog, "llama-3-8b-ic").copies);
    expect(other.gpuBusyFraction).toBe(0);
  });
});

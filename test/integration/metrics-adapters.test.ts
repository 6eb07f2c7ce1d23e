import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbFinishedJobs } from "#shared/aws/dynamodb-finished-jobs";
import { EmulatorEngineMetrics } from "#shared/aws/emulator-engine-metrics";
import { fauxqsOldestAge, SqsQueueMetrics } from "#shared/aws/sqs-queue-metrics";
import { RetryableError } from "#shared/core/errors";
import { localClientConfig, localDocumentClient, startDynalite, startFauxqs, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";
import { componentOf, emulatorForTests, invokeCommand, routesCatalog } from "../helpers/sagemaker.ts";

// The embedded stack's metrics sources against the real servers: a jobs table without the
// finished-jobs index on dynalite (the index itself: test/contract/finished-job-index.test.ts),
// queue depths and oldest age on fauxqs, the engines from the emulator's stats.

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

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateTableCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { localDynamoDbClient } from "#local/dynamodb";
import { startEventSourceMapping } from "#local/event-source-mapping";
import type { Logger } from "#local/log";
import { localQueueArn, localSqsClient } from "#local/sqs";
import { type StoreProcess, startStoreProcess } from "#local/store-process";
import { pollUntil, uniqueSuffix } from "../helpers/local-aws.ts";

// The stores as the chaos run crashes them: SIGKILL, no warning, then a new process on the same
// port and data folder. The same SDK clients (kept-alive sockets and all) go on once it is back.
describe("a store in a process of its own, killed and restarted", () => {
  let dataDir: string;
  let store: StoreProcess | undefined;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "batchline-store-process-"));
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await rm(dataDir, { recursive: true, force: true });
  });

  it("dynalite keeps every item it acknowledged, on the same port, for the same client", async () => {
    store = await startStoreProcess("dynamodb", { host: "127.0.0.1", port: 0, dataDir });
    const client = localDynamoDbClient(store.url);
    try {
      const TableName = `crash-${uniqueSuffix()}`;
      await client.send(
        new CreateTableCommand({ TableName, BillingMode: "PAY_PER_REQUEST", AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }] }),
      );
      await Promise.all(Array.from({ length: 50 }, (_, i) => client.send(new PutItemCommand({ TableName, Item: { id: { S: `item-${i}` }, n: { N: String(i) } } }))));
      await store.kill();
      expect(store.running).toBe(false);
      await expect(client.send(new GetItemCommand({ TableName, Key: { id: { S: "item-0" } } }))).rejects.toMatchObject({ code: "ECONNREFUSED" });

      await store.restart();
      expect(store.running).toBe(true);
      const items = await Promise.all(Array.from({ length: 50 }, (_, i) => client.send(new GetItemCommand({ TableName, Key: { id: { S: `item-${i}` } }, ConsistentRead: true }))));
      expect(items.map((r) => Number(r.Item?.n?.N))).toEqual(Array.from({ length: 50 }, (_, i) => i));
    } finally {
      client.destroy();
    }
  });

  it("fauxqs keeps every message it acknowledged; one in flight stays in flight, under the receipt handle it had", async () => {
    store = await startStoreProcess("sqs", { host: "127.0.0.1", port: 0, dataDir });
    const client = localSqsClient(store.url);
    try {
      const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: `crash-${uniqueSuffix()}`, Attributes: { VisibilityTimeout: "60" } }));
      await Promise.all(Array.from({ length: 20 }, (_, i) => client.send(new SendMessageCommand({ QueueUrl, MessageBody: `message-${i}` }))));
      const received = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 5 }));
      const inFlight = received.Messages ?? [];
      expect(inFlight).toHaveLength(5);
      const port = store.port;
      await store.kill();
      await store.restart();
      expect(store.port).toBe(port);

      // Only the 15 that were not in flight come back.
      const visible = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
      const next = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
      const seen = [...(visible.Messages ?? []), ...(next.Messages ?? [])];
      expect(seen).toHaveLength(15);
      expect(seen.some((m) => inFlight.some((f) => f.MessageId === m.MessageId))).toBe(false);
      // The receipt handles given before the crash still work.
      const [deleted, ...released] = inFlight;
      await client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: deleted?.ReceiptHandle }));
      for (const m of released) await client.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));
      const back = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      expect(back.Messages?.map((m) => m.Body).sort()).toEqual(released.map((m) => m.Body).sort());
    } finally {
      client.destroy();
    }
  });

  it("an event source mapping rides out fauxqs's crash: the delete of a finished batch waits for it, and polling goes on", async () => {
    store = await startStoreProcess("sqs", { host: "127.0.0.1", port: 0, dataDir });
    const client = localSqsClient(store.url);
    const warnings: string[] = [];
    const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
    const events: SQSEvent[] = [];
    const gate = Promise.withResolvers<void>();
    const name = `crash-esm-${uniqueSuffix()}`;
    const { QueueUrl = "" } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: "60" } }));
    const mapping = startEventSourceMapping({
      sqs: client,
      queueUrl: QueueUrl,
      queueArn: localQueueArn(name),
      mapping: { functionName: "f", batchSize: 10, maximumBatchingWindowSeconds: 0, maximumConcurrency: 2, reportBatchItemFailures: true },
      invoke: async (_name, event) => {
        events.push(event);
        if (events.length === 1) await gate.promise;
        return { payload: "" };
      },
      log,
      wakeReceivers: () => store?.wakeReceivers(),
    });
    try {
      await client.send(new SendMessageCommand({ QueueUrl, MessageBody: "before" }));
      await pollUntil(async () => (events.length === 1 ? true : undefined), "the first invocation", 15_000, 50);
      await store.kill();
      gate.resolve();
      await pollUntil(async () => (warnings.some((w) => w.startsWith("DeleteMessageBatch")) ? true : undefined), "a delete that found no server", 15_000, 50);
      await store.restart();

      // Deleted once fauxqs is back: with a 60 s visibility timeout, nothing but the delete empties the queue this soon.
      const count = async () => {
        const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }));
        return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
      };
      await pollUntil(async () => ((await count()) === 0 ? true : undefined), "the finished message deleted", 15_000, 100);
      await client.send(new SendMessageCommand({ QueueUrl, MessageBody: "after" }));
      await pollUntil(async () => (events.length === 2 ? true : undefined), "a message sent after the restart delivered", 15_000, 50);
      expect(events.map((e) => e.Records.map((r) => r.body))).toEqual([["before"], ["after"]]);
    } finally {
      gate.resolve();
      await mapping.stop();
      client.destroy();
    }
  }, 60_000);
});

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateTableCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { localDynamoDbClient, startLocalDynamoDb } from "#local/dynamodb";
import { localSqsClient, startLocalSqs } from "#local/sqs";
import { uniqueSuffix } from "../helpers/local-aws.ts";

describe("the emulators on a data dir", () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "batchline-persistence-"));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("fauxqs keeps a queue, its attributes and its messages, received or not, across a restart", async () => {
    const name = `persist-${uniqueSuffix()}`;
    const before = await startLocalSqs({ port: 0, dataDir });
    const client = localSqsClient(before.url);
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: "120" } }));
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: "waiting" }));
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: "in flight" }));
    const received = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1 }));
    client.destroy();
    await before.close();

    // Another port on purpose: queues are found by name whatever port their URL was made with.
    const after = await startLocalSqs({ port: 0, dataDir });
    const again = localSqsClient(after.url);
    try {
      const { QueueUrl: url } = await again.send(new GetQueueUrlCommand({ QueueName: name }));
      const { Attributes } = await again.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["VisibilityTimeout"] }));
      expect(Attributes?.VisibilityTimeout).toBe("120");
      const first = await again.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
      const inFlight = received.Messages?.[0];
      expect(first.Messages?.map((m) => m.Body)).toEqual([inFlight?.Body === "waiting" ? "in flight" : "waiting"]);
      // The one received before the restart is still in flight, under its old receipt handle.
      await again.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: inFlight?.ReceiptHandle, VisibilityTimeout: 0 }));
      const second = await again.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
      expect(second.Messages?.map((m) => m.Body)).toEqual([inFlight?.Body]);
    } finally {
      again.destroy();
      await after.close();
    }
  });

  it("dynalite keeps a table and its items across a restart", async () => {
    const table = `persist-${uniqueSuffix()}`;
    const before = await startLocalDynamoDb({ port: 0, dataDir });
    const client = localDynamoDbClient(before.url);
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      }),
    );
    await client.send(new PutItemCommand({ TableName: table, Item: { id: { S: "a" }, value: { N: "42" } } }));
    client.destroy();
    await before.close();

    const after = await startLocalDynamoDb({ port: 0, dataDir });
    const again = localDynamoDbClient(after.url);
    try {
      const { Item } = await again.send(new GetItemCommand({ TableName: table, Key: { id: { S: "a" } } }));
      expect(Item).toEqual({ id: { S: "a" }, value: { N: "42" } });
    } finally {
      again.destroy();
      await after.close();
    }
  });
});

import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { localClientConfig } from "#local/aws";
import { type DynamoDbExchange, type DynamoDbFaultProxy, startDynamoDbFaultProxy } from "#local/dynamodb-fault-proxy";
import { type LocalDynamoDb, startLocalDynamoDb } from "#local/dynamodb";

const TABLE = "things";
let dynalite: LocalDynamoDb;
let proxy: DynamoDbFaultProxy;
let direct: DynamoDBClient;
let once: DynamoDBClient;
const exchanges: DynamoDbExchange[] = [];

const key = (id: string) => ({ id: { S: id } });
const put = (client: DynamoDBClient, id: string, condition = false) =>
  client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key(id), n: { N: "1" } }, ...(condition && { ConditionExpression: "attribute_not_exists(id)" }) }));
const stored = async (id: string) => (await direct.send(new GetItemCommand({ TableName: TABLE, Key: key(id), ConsistentRead: true }))).Item;

beforeAll(async () => {
  dynalite = await startLocalDynamoDb();
  proxy = await startDynamoDbFaultProxy({ target: dynalite.url, onExchange: (e) => exchanges.push(e) });
  direct = new DynamoDBClient(localClientConfig(dynalite.url));
  once = new DynamoDBClient({ ...localClientConfig(proxy.url), maxAttempts: 1 });
  await direct.send(new CreateTableCommand({
    TableName: TABLE,
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
    BillingMode: "PAY_PER_REQUEST",
  }));
});

afterAll(async () => {
  direct?.destroy();
  once?.destroy();
  await proxy?.close();
  await dynalite?.close();
});

beforeEach(() => {
  proxy.setFaults(undefined);
  exchanges.length = 0;
});

describe("the DynamoDB fault proxy", () => {
  it("forwards DynamoDB's answers untouched when no fault is set", async () => {
    await put(once, "plain");
    expect(await stored("plain")).toMatchObject({ n: { N: "1" } });
    const conditional = put(once, "plain", true);
    await expect(conditional).rejects.toMatchObject({ name: "ConditionalCheckFailedException" });
    expect(exchanges.map((e) => [e.operation, e.table, e.fault, e.upstreamStatus, e.status])).toEqual([
      ["PutItem", TABLE, "none", 200, 200],
      ["PutItem", TABLE, "none", 400, 400],
    ]);
  });

  it("answers a fault before forwarding in DynamoDB's own error shape, and nothing is written", async () => {
    proxy.setFaults({ beforeFraction: 1, throttleShare: 1 });
    await expect(put(once, "never")).rejects.toMatchObject({ name: "ProvisionedThroughputExceededException", $metadata: { httpStatusCode: 400 } });
    proxy.setFaults({ beforeFraction: 1, throttleShare: 0 });
    await expect(put(once, "never")).rejects.toMatchObject({ name: "InternalServerError", $metadata: { httpStatusCode: 500 } });
    expect(await stored("never")).toBeUndefined();
    expect(exchanges.map((e) => [e.fault, e.faultKind, e.upstreamStatus])).toEqual([["before", "throttle", undefined], ["before", "internal", undefined]]);
    expect(proxy.stats().injected.before).toEqual({ throttle: 1, internal: 1 });
  });

  it("forwards first with a fault after: the write happens, the caller sees an error, and the SDK's retry of a conditional write then fails its condition", async () => {
    proxy.setFaults({ afterFraction: 1, throttleShare: 0 });
    await expect(put(once, "landed")).rejects.toMatchObject({ name: "InternalServerError" });
    expect(await stored("landed")).toMatchObject({ n: { N: "1" } });
    expect(exchanges[0]).toMatchObject({ fault: "after", upstreamStatus: 200, status: 500 });

    // The first attempt meets the fault, the SDK's retry goes through: the write already happened.
    let calls = 0;
    proxy.setFaults(undefined);
    const retrying = new DynamoDBClient({ ...localClientConfig(proxy.url), maxAttempts: 2 });
    retrying.middlewareStack.add((next) => async (args) => {
      if (calls++ === 0) proxy.setFaults({ afterFraction: 1 });
      else proxy.setFaults(undefined);
      return next(args);
    }, { step: "finalizeRequest", name: "faultOnFirstAttempt" });
    await expect(put(retrying, "retried", true)).rejects.toMatchObject({ name: "ConditionalCheckFailedException" });
    expect(await stored("retried")).toBeDefined();
    retrying.destroy();
  });

  it("limits faults to the operations and tables named, and counts what it did", async () => {
    proxy.setFaults({ beforeFraction: 1, operations: ["UpdateItem"] });
    await put(once, "not-an-update");
    const update = once.send(new UpdateItemCommand({ TableName: TABLE, Key: key("not-an-update"), UpdateExpression: "SET n = :n", ExpressionAttributeValues: { ":n": { N: "2" } } }));
    await expect(update).rejects.toBeDefined();
    proxy.setFaults({ beforeFraction: 1, tables: ["other"] });
    await put(once, "other-table-only");
    expect(exchanges.map((e) => [e.operation, e.fault])).toEqual([["PutItem", "none"], ["UpdateItem", "before"], ["PutItem", "none"]]);
  });

  it("draws its faults from a seeded sequence, at about the fraction asked", async () => {
    const draw = async (seed: number) => {
      proxy.setFaults({ beforeFraction: 0.3, seed });
      exchanges.length = 0;
      for (let i = 0; i < 60; i++) await put(once, `seq-${i}`).catch(() => undefined);
      return exchanges.map((e) => e.fault);
    };
    const first = await draw(7);
    expect(await draw(7)).toEqual(first);
    const faulted = first.filter((f) => f === "before").length;
    expect(faulted).toBeGreaterThan(5);
    expect(faulted).toBeLessThan(35);
  });

  it("refuses fractions that make no sense", () => {
    expect(() => proxy.setFaults({ beforeFraction: 1.5 })).toThrow(/beforeFraction/);
    expect(() => proxy.setFaults({ beforeFraction: 0.6, afterFraction: 0.6 })).toThrow(/at most 1/);
  });
});

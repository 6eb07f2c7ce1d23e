import { ConditionalCheckFailedException, CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoDbExchange, type MeteringProxy, startMeteringProxy } from "#local/metering-proxy";
import { readingDelta, RequestMeter } from "#local/request-meter";
import { localClientConfig, type LocalServer, startDynalite, uniqueSuffix } from "../helpers/local-aws.ts";

// The metering proxy in front of dynalite, with a real DynamoDB client through it: every call
// counted, its capacity units read from ConsumedCapacity, and the answers the client gets as
// dynalite gave them (ConsumedCapacity only where the caller asked for it, a valid checksum).
describe("the DynamoDB metering proxy", () => {
  let dynalite: LocalServer;
  let proxy: MeteringProxy;
  let client: DynamoDBClient;
  const meter = new RequestMeter();
  const table = `meter-${uniqueSuffix()}`;

  beforeAll(async () => {
    dynalite = await startDynalite();
    proxy = await startMeteringProxy({ target: dynalite.endpoint, host: "127.0.0.1", exchange: dynamoDbExchange(meter) });
    client = new DynamoDBClient(localClientConfig(proxy.url));
    await client.send(new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
      BillingMode: "PAY_PER_REQUEST",
    }));
  });

  afterAll(async () => {
    client?.destroy();
    await proxy?.close();
    await dynalite?.close();
  });

  it("counts each call by action, and the units it consumed as DynamoDB sizes them", async () => {
    const before = meter.read();
    // 2,500 bytes of payload: 3 write units; a read of it, 1 unit (4 KB), half for an eventually consistent read.
    const big = "x".repeat(2_500);
    const put = await client.send(new PutItemCommand({ TableName: table, Item: { pk: { S: "a" }, sk: { S: "1" }, body: { S: big } } }));
    expect(put.ConsumedCapacity).toBeUndefined();
    const got = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: "a" }, sk: { S: "1" } }, ConsistentRead: true }));
    expect(got.Item?.body?.S).toBe(big);
    expect(got.ConsumedCapacity).toBeUndefined();
    // A caller that asks gets its ConsumedCapacity, and it is counted once.
    const asked = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: "a" }, sk: { S: "1" } }, ReturnConsumedCapacity: "TOTAL" }));
    expect(asked.ConsumedCapacity?.CapacityUnits).toBe(0.5);
    const query = await client.send(new QueryCommand({ TableName: table, KeyConditionExpression: "pk = :pk", ExpressionAttributeValues: { ":pk": { S: "a" } } }));
    expect(query.Count).toBe(1);
    const after = meter.read();
    expect(after.requests.dynamodb).toMatchObject({ PutItem: 1, GetItem: 2, Query: 1, CreateTable: 1 });
    expect(after.dynamodb_capacity.write_units - before.dynamodb_capacity.write_units).toBe(3);
    expect(after.dynamodb_capacity.read_units - before.dynamodb_capacity.read_units).toBe(1 + 0.5 + 0.5);
    // And by what each touched: which part of the pipeline asks.
    expect(readingDelta(after, before).dynamodb_by_table).toEqual({ [`PutItem ${table}`]: 1, [`GetItem ${table}`]: 2, [`Query ${table}`]: 1 });
  });

  it("counts a write refused by its condition as the unit DynamoDB charges for it, and passes the refusal on", async () => {
    const before = meter.read();
    const refused = client.send(new UpdateItemCommand({
      TableName: table,
      Key: { pk: { S: "b" }, sk: { S: "1" } },
      UpdateExpression: "SET v = :v",
      ConditionExpression: "attribute_exists(pk)",
      ExpressionAttributeValues: { ":v": { N: "1" } },
    }));
    await expect(refused).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    const after = meter.read();
    expect((after.requests.dynamodb?.UpdateItem ?? 0) - (before.requests.dynamodb?.UpdateItem ?? 0)).toBe(1);
    expect(after.dynamodb_capacity.write_units - before.dynamodb_capacity.write_units).toBe(1);
  });
});

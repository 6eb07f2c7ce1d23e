import { DynamoDBClient, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepExpired } from "#local/ttl-sweeper";
import { createTablesFromInfra, localClientConfig, startDynalite, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";

// Retention in the embedded stack: dynalite has no TTL, the sweeper deletes what DynamoDB would.
let dynalite: LocalServer;
let ddb: DynamoDBClient;
const prefix = `ttl-${uniqueSuffix()}`;

beforeAll(async () => {
  dynalite = await startDynalite();
  ddb = new DynamoDBClient(localClientConfig(dynalite.endpoint));
  await createTablesFromInfra(ddb, prefix);
});

afterAll(async () => {
  ddb?.destroy();
  await dynalite?.close();
});

describe("sweepExpired", () => {
  it("deletes the items past their expiry, across pages and key shapes, and keeps the rest", async () => {
    const now = new Date("2026-11-27T12:00:00Z");
    const epoch = now.getTime() / 1000;
    const jobs = `${prefix}-jobs`;
    const subscriptions = `${prefix}-subscriptions`;
    for (let i = 0; i < 60; i++) {
      await ddb.send(new PutItemCommand({ TableName: jobs, Item: { job_id: { S: `job_${i}` }, tenant: { S: "acme" }, expires_at: { N: String(i < 40 ? epoch - 1 : epoch + 3600) } } }));
    }
    await ddb.send(new PutItemCommand({ TableName: subscriptions, Item: { topic: { S: "job#1" }, connection_id: { S: "c1" }, expires_at: { N: String(epoch - 10) } } }));
    await ddb.send(new PutItemCommand({ TableName: subscriptions, Item: { topic: { S: "job#1" }, connection_id: { S: "c2" }, expires_at: { N: String(epoch + 10) } } }));

    const deleted = await sweepExpired(ddb, [{ tableName: jobs, attribute: "expires_at" }, { tableName: subscriptions, attribute: "expires_at" }], now);

    expect(deleted).toBe(41);
    const left = (await ddb.send(new ScanCommand({ TableName: jobs }))).Items ?? [];
    expect(left.map((i) => i.job_id?.S).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `job_${i + 40}`).sort());
    const subs = (await ddb.send(new ScanCommand({ TableName: subscriptions }))).Items ?? [];
    expect(subs.map((i) => i.connection_id?.S)).toEqual(["c2"]);
  });
});

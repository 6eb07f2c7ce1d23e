import { LANES, laneQueueSuffix, type Lane } from "#shared/core/lanes";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll } from "vitest";
import { SqsJobQueue } from "#shared/aws/sqs-job-queue";
import type { JobQueue } from "#shared/ports";
import { createTableFromInfra, localClientConfig, localDocumentClient, startDynalite, startFauxqs, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";

/** The tables of infra/tables.yml, by logical id. */
export type TableId =
  | "JobsTable" | "IdempotencyKeysTable" | "BatchesTable" | "ApiKeysTable" | "WsTicketsTable" | "ConnectionsTable"
  | "SubscriptionsTable" | "RouteSettingsTable" | "CapacityTable" | "TenantsTable" | "UsageTable" | "QueueBoardTable" | "FilesTable"
  | "WebhookEndpointsTable";

export type TableOptions = { readonly client: DynamoDBDocumentClient; readonly tableName: string };

/**
 * Runs dynalite for the enclosing describe block. Each call of the function it returns creates a
 * new table, named uniquely, from its definition in infra/tables.yml: one per test, so that no two
 * tests see each other's items.
 */
export function dynaliteTables(): (table: TableId) => Promise<TableOptions> {
  let server: LocalServer | undefined;
  let raw: DynamoDBClient | undefined;
  let client: DynamoDBDocumentClient | undefined;
  beforeAll(async () => {
    server = await startDynalite();
    raw = new DynamoDBClient(localClientConfig(server.endpoint));
    client = localDocumentClient(server.endpoint);
  });
  afterAll(async () => {
    client?.destroy();
    raw?.destroy();
    await server?.close();
  });
  return async (table) => {
    if (!raw || !client) throw new Error("dynalite has not started: call the table factory inside a test");
    const tableName = await createTableFromInfra(raw, table, `contract-${table}-${uniqueSuffix()}`);
    return { client, tableName };
  };
}

/** A queue under test and two routes it serves, each with a queue of its own. */
export type QueueUnderTest = { readonly queue: JobQueue; readonly routes: readonly [string, string] };

/** How a test's SQS queues are created: how long a received message stays hidden unless released. */
export type QueueSetup = { readonly visibilityTimeoutSeconds: number };

/** Runs fauxqs for the enclosing describe block; each call creates two new queues and an SqsJobQueue over them. */
export function fauxqsQueues(): (setup: QueueSetup) => Promise<QueueUnderTest> {
  let server: LocalServer | undefined;
  let sqs: SQSClient | undefined;
  beforeAll(async () => {
    server = await startFauxqs();
    sqs = new SQSClient({ ...localClientConfig(server.endpoint), useQueueUrlAsEndpoint: false });
  });
  afterAll(async () => {
    sqs?.destroy();
    await server?.close();
  });
  const queueName = (route: string, lane: Lane = "batch") => `contract-${route}${laneQueueSuffix(lane)}`;
  return async ({ visibilityTimeoutSeconds }) => {
    const client = sqs;
    if (!client) throw new Error("fauxqs has not started: call the queue factory inside a test");
    const routes = [`route-a-${uniqueSuffix()}`, `route-b-${uniqueSuffix()}`] as const;
    for (const route of routes) {
      for (const lane of LANES) {
        await client.send(new CreateQueueCommand({ QueueName: queueName(route, lane), Attributes: { VisibilityTimeout: String(visibilityTimeoutSeconds) } }));
      }
    }
    return { queue: new SqsJobQueue({ client, queueName }), routes };
  };
}

/** Runs fauxqs for the enclosing describe block; each call creates a new bucket and answers a client and its name. */
export function fauxqsBuckets(): () => Promise<{ readonly client: S3Client; readonly bucket: string }> {
  let server: LocalServer | undefined;
  let s3: S3Client | undefined;
  beforeAll(async () => {
    server = await startFauxqs();
    s3 = new S3Client({ ...localClientConfig(server.endpoint), forcePathStyle: true });
  });
  afterAll(async () => {
    s3?.destroy();
    await server?.close();
  });
  return async () => {
    const client = s3;
    if (!client) throw new Error("fauxqs has not started: call the bucket factory inside a test");
    const bucket = `contract-files-${uniqueSuffix()}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    return { client, bucket };
  };
}

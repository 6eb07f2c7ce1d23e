import { setTimeout as delay } from "node:timers/promises";
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient, ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { BucketAlreadyOwnedByYou, CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  CreateQueueCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  SetQueueAttributesCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { localQueueArn } from "./sqs.ts";
import type { QueueDefinition, TableDefinition } from "./template.ts";

export type ProvisionedQueue = { readonly name: string; readonly url: string; readonly arn: string };

/**
 * Creates the queues that are missing and sets the template's attributes on those that exist,
 * as a CloudFormation update would: their messages stay. Dead-letter queues come first so that
 * every RedrivePolicy names a queue that exists.
 */
export async function provisionQueues(sqs: SQSClient, queues: readonly QueueDefinition[]): Promise<ProvisionedQueue[]> {
  const provisioned: ProvisionedQueue[] = [];
  for (const queue of deadLetterQueuesFirst(queues)) {
    const attributes = { ...queue.attributes, ...redrivePolicy(queue) };
    let url = await queueUrl(sqs, queue.name);
    if (url === undefined) {
      url = (await sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: attributes }))).QueueUrl;
    } else if (Object.keys(attributes).length > 0) {
      await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
    }
    if (url === undefined) throw new Error(`CreateQueue ${queue.name} returned no QueueUrl`);
    provisioned.push({ name: queue.name, url, arn: localQueueArn(queue.name) });
  }
  return provisioned;
}

function redrivePolicy(queue: QueueDefinition): Record<string, string> {
  if (!queue.redrive) return {};
  const { deadLetterQueue, maxReceiveCount } = queue.redrive;
  return { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: localQueueArn(deadLetterQueue), maxReceiveCount }) };
}

async function queueUrl(sqs: SQSClient, name: string): Promise<string | undefined> {
  try {
    return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
  } catch (error) {
    if (error instanceof QueueDoesNotExist) return undefined;
    throw error;
  }
}

function deadLetterQueuesFirst(queues: readonly QueueDefinition[]): QueueDefinition[] {
  const targets = new Set(queues.flatMap((q) => (q.redrive ? [q.redrive.deadLetterQueue] : [])));
  return [...queues].sort((a, b) => Number(targets.has(b.name)) - Number(targets.has(a.name)));
}

/**
 * Creates the tables that are missing; an existing table is kept as it is, data and all (dynalite
 * cannot add a GSI to a table, and a restart must keep the data).
 */
export async function provisionTables(ddb: DynamoDBClient, tables: readonly TableDefinition[]): Promise<void> {
  await Promise.all(
    tables.map(async (table) => {
      if ((await tableStatus(ddb, table.TableName)) === undefined) await ddb.send(new CreateTableCommand(table));
      await waitUntilActive(ddb, table.TableName);
    }),
  );
}

async function tableStatus(ddb: DynamoDBClient, name: string): Promise<string | undefined> {
  try {
    return (await ddb.send(new DescribeTableCommand({ TableName: name }))).Table?.TableStatus ?? "UNKNOWN";
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

/** dynalite flips a new table to ACTIVE on its next tick; the deadline is only a safety net. */
async function waitUntilActive(ddb: DynamoDBClient, name: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await tableStatus(ddb, name)) !== "ACTIVE") {
    if (Date.now() > deadline) throw new Error(`table ${name} not ACTIVE after ${timeoutMs} ms`);
    await delay(10);
  }
}

/** Creates the buckets that are missing; one that exists keeps its objects, as after a restart. */
export async function provisionBuckets(s3: S3Client, buckets: readonly string[]): Promise<void> {
  for (const bucket of buckets) {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (error) {
      if (!(error instanceof BucketAlreadyOwnedByYou) && (error as { name?: string }).name !== "BucketAlreadyExists") throw error;
    }
  }
}

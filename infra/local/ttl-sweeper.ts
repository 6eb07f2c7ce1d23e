import { type DynamoDBClient, ScanCommand, BatchWriteItemCommand, DescribeTableCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import type { Logger } from "./log.ts";
import type { TimeToLiveDefinition } from "./template.ts";

/** DynamoDB deletes expired items "within a few days"; locally a minute is plenty. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

/**
 * DynamoDB's TTL for dynalite, which has none: deletes the items whose TTL attribute (epoch
 * seconds) is in the past, table by table, as AWS would in the background.
 * @returns how many items it deleted.
 */
export async function sweepExpired(ddb: DynamoDBClient, tables: readonly TimeToLiveDefinition[], now: Date): Promise<number> {
  let deleted = 0;
  for (const { tableName, attribute } of tables) {
    const keyNames = ((await ddb.send(new DescribeTableCommand({ TableName: tableName }))).Table?.KeySchema ?? []).map((k) => k.AttributeName as string);
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await ddb.send(
        new ScanCommand({
          TableName: tableName,
          FilterExpression: "#ttl < :now",
          ExpressionAttributeNames: { "#ttl": attribute },
          ExpressionAttributeValues: { ":now": { N: String(Math.floor(now.getTime() / 1000)) } },
          ExclusiveStartKey: start,
        }),
      );
      const keys = (page.Items ?? []).map((item) => Object.fromEntries(keyNames.map((k) => [k, item[k] as AttributeValue])));
      for (let i = 0; i < keys.length; i += 25) {
        const chunk = keys.slice(i, i + 25);
        await ddb.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: chunk.map((Key) => ({ DeleteRequest: { Key } })) } }));
        deleted += chunk.length;
      }
      start = page.LastEvaluatedKey;
    } while (start !== undefined);
  }
  return deleted;
}

export type RunningSweeper = { stop(): Promise<void> };

/** Sweeps every `intervalMs` until stopped; a failed sweep is logged and tried again next time. */
export function startTtlSweeper(options: {
  readonly ddb: DynamoDBClient;
  readonly tables: readonly TimeToLiveDefinition[];
  readonly intervalMs?: number;
  readonly log: Logger;
}): RunningSweeper {
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = sweepExpired(options.ddb, options.tables, new Date()).then(
      (n) => {
        if (n > 0) options.log.info(`retention: deleted ${n} expired items`);
      },
      (error: unknown) => options.log.warn(`retention sweep failed: ${String(error)}`),
    );
  }, options.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

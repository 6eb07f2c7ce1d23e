import { type DynamoDbExchange, type DynamoDbFaultProxy, startDynamoDbFaultProxy } from "#local/dynamodb-fault-proxy";
import { freePort } from "#local/ports";
import { WriteLog } from "./writes.ts";

/**
 * DynamoDB as the chaos run sees it: dynalite on a port of our choosing (the stack starts it
 * there), and in front of it the fault proxy every function talks through, which records what
 * really reached the jobs table.
 */
export type WatchedDynamoDb = {
  /** dynalite's own port: the stack and the run's reads go straight to it. */
  readonly port: number;
  readonly proxy: DynamoDbFaultProxy;
  readonly writes: WriteLog;
  /** Quota counter updates written but answered with an error: the SDK's retry adds them again. */
  readonly counterRetries: { lostAnswers: number; amount: number };
  /** Requests to the usage table (the quota's and batches' counters), by operation, retries included. */
  readonly usageRequests: Record<string, number>;
};

export async function startWatchedDynamoDb(prefix: string): Promise<WatchedDynamoDb> {
  const port = await freePort();
  const writes = new WriteLog(`${prefix}-jobs`);
  const usageTable = `${prefix}-usage`;
  const counterRetries = { lostAnswers: 0, amount: 0 };
  const usageRequests: Record<string, number> = {};
  const proxy = await startDynamoDbFaultProxy({
    target: `http://127.0.0.1:${port}`,
    onExchange: (e) => {
      writes.observe(e);
      if (e.table === usageTable) usageRequests[e.operation] = (usageRequests[e.operation] ?? 0) + 1;
      const added = lostCounterAnswer(e, usageTable);
      if (added !== undefined) {
        counterRetries.lostAnswers++;
        counterRetries.amount += added;
      }
    },
  });
  return { port, proxy, writes, counterRetries, usageRequests };
}

/** The amount a jobs quota counter's ADD wrote when its answer was replaced by an error; undefined for any other exchange. */
function lostCounterAnswer(e: DynamoDbExchange, usageTable: string): number | undefined {
  if (e.table !== usageTable || e.operation !== "UpdateItem" || e.fault !== "after" || e.upstreamStatus !== 200) return undefined;
  const request = e.request as { Key?: { key?: { S?: string } }; ExpressionAttributeValues?: Record<string, { N?: string }> };
  if (!request.Key?.key?.S?.startsWith("jobs#")) return undefined;
  return Number(request.ExpressionAttributeValues?.[":n"]?.N ?? 0);
}

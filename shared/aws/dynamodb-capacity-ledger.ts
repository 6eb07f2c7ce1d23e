import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { addLoad, noLoad, type Load } from "../core/gpu-batch-policy.ts";
import type { CapacityLedger, LedgerEntry } from "../ports.ts";
import { DynamoDbTable, hasExpired, sdk, ttlSeconds } from "./dynamodb-table.ts";

const entryItem = z.object({
  holder: z.string(),
  sequences: z.number(),
  tokens: z.number(),
  oldest_waiting_ms: z.number().optional(),
  expires_at: z.number(),
});

/** One item per (component, holder): what that batcher holds there, until it expires. */
export class DynamoDbCapacityLedger extends DynamoDbTable implements CapacityLedger {
  async others(component: string, holder: string, now: Date): Promise<{ load: Load; oldestWaitingMs: number | undefined }> {
    const items = await this.queryAll(`read capacity of ${component}`, { KeyConditionExpression: "component = :c", ExpressionAttributeValues: { ":c": component } });
    const entries = items.map((item) => this.decode(entryItem, item, `capacity entry of ${component} held by ${String(item.holder)}`));
    const live = entries.filter((e) => e.holder !== holder && !hasExpired(e.expires_at, now));
    const waiting = live.flatMap((e) => (e.oldest_waiting_ms === undefined ? [] : [e.oldest_waiting_ms]));
    return {
      load: live.reduce<Load>((sum, e) => addLoad(sum, { sequences: e.sequences, tokens: e.tokens }), noLoad),
      oldestWaitingMs: waiting.length === 0 ? undefined : Math.min(...waiting),
    };
  }

  async publish(component: string, holder: string, entry: LedgerEntry, expiresAt: Date): Promise<void> {
    const { load, oldestWaitingMs } = entry;
    if (load.sequences === 0 && oldestWaitingMs === undefined) {
      await sdk(`release capacity of ${component}`, () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { component, holder } })));
      return;
    }
    const item = {
      component, holder, sequences: load.sequences, tokens: load.tokens, expires_at: ttlSeconds(expiresAt),
      ...(oldestWaitingMs !== undefined && { oldest_waiting_ms: oldestWaitingMs }),
    };
    await sdk(`hold capacity of ${component}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: item })));
  }
}

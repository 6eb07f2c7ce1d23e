import { isDeepStrictEqual } from "node:util";
import { GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { BatchRecord } from "../core/batches.ts";
import { ConflictError } from "../core/errors.ts";
import type { BatchStore, Page, PageRequest } from "../ports.ts";
import { decodeCursor, encodeCursor, rejectForeignCursor } from "./cursor.ts";
import { conditional, DynamoDbTable, sdk } from "./dynamodb-table.ts";

const batchItem = z.object({
  batch_id: z.string(),
  tenant: z.string(),
  created_at: z.string(),
  total: z.number(),
  models: z.array(z.string()),
  metadata: z.record(z.string(), z.string()).optional(),
  expires_at: z.number(),
}) satisfies z.ZodType<BatchRecord>;

export class DynamoDbBatchStore extends DynamoDbTable implements BatchStore {
  async create(batch: BatchRecord): Promise<void> {
    const put = await conditional(`create batch ${batch.batch_id}`, () =>
      this.client.send(new PutCommand({ TableName: this.tableName, Item: batch, ConditionExpression: "attribute_not_exists(batch_id)" })),
    );
    if (put !== undefined) return;
    // A written batch whose answer was lost fails the SDK's retry on its own condition: that is
    // success, not a conflict (which would refuse the file while its batch record stays).
    const stored = await this.get(batch.batch_id);
    // As written: the document client drops undefined attributes.
    if (!isDeepStrictEqual(stored, JSON.parse(JSON.stringify(batch)))) throw new ConflictError(`batch ${batch.batch_id} already exists`);
  }

  async get(batchId: string): Promise<BatchRecord | undefined> {
    const out = await sdk(`get batch ${batchId}`, () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { batch_id: batchId }, ConsistentRead: true })),
    );
    return out.Item && this.#decode(out.Item);
  }

  async listByTenant(tenant: string, page: PageRequest): Promise<Page<BatchRecord>> {
    const out = await sdk("list batches", () =>
      this.client.send(new QueryCommand({
        TableName: this.tableName,
        IndexName: "tenant-index",
        KeyConditionExpression: "tenant = :tenant",
        ExpressionAttributeValues: { ":tenant": tenant },
        ScanIndexForward: false,
        Limit: page.limit,
        ExclusiveStartKey: decodeCursor(page.cursor),
      })).catch(rejectForeignCursor(page.cursor)),
    );
    return { items: (out.Items ?? []).map((item) => this.#decode(item)), cursor: encodeCursor(out.LastEvaluatedKey) };
  }

  #decode(item: Record<string, unknown>): BatchRecord {
    return this.decode(batchItem, item, `batch ${String(item.batch_id)}`);
  }
}

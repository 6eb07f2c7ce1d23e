import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { BatchRecord } from "../core/batches.ts";
import { ConflictError, ValidationError } from "../core/errors.ts";
import { openAIEndpoints, openAIStatuses, SWEEP_SHARD, timestampOf, type BatchChange, type OpenAIBatchStatus } from "../core/openai-batches.ts";
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
  // An OpenAI batch's fields (core/batches.ts); a record from before has none and reads as JSON lines.
  kind: z.enum(["openai", "jsonl"]).optional(),
  endpoint: z.enum(openAIEndpoints).optional(),
  input_file_id: z.string().optional(),
  completion_window: z.literal("24h").optional(),
  status: z.enum(openAIStatuses).optional(),
  window_expires_at: z.number().optional(),
  outcome: z.enum(["completed", "cancelled", "expired"]).optional(),
  output_file_id: z.string().nullable().optional(),
  error_file_id: z.string().nullable().optional(),
  errors: z.object({ object: z.literal("list"), data: z.array(z.object({ code: z.string(), message: z.string(), param: z.string().nullable(), line: z.number().nullable() })) }).optional(),
  request_counts: z.object({ total: z.number(), queued: z.number(), running: z.number(), succeeded: z.number(), failed: z.number(), cancelled: z.number(), expired: z.number() }).optional(),
  sweep: z.string().optional(),
  sweep_at: z.number().optional(),
  ...Object.fromEntries(openAIStatuses.filter((st) => st !== "validating").map((st) => [timestampOf(st), z.number().optional()])),
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

  async listByTenant(tenant: string, page: PageRequest & { readonly after?: string | undefined }): Promise<Page<BatchRecord>> {
    let cursor = page.cursor;
    if (page.after !== undefined) {
      const after = await this.get(page.after);
      if (after?.tenant !== tenant) throw new ValidationError(`after: no batch ${page.after}`, "after");
      // The tenant index's key of that batch: where DynamoDB resumes, as with a cursor it handed out.
      cursor = encodeCursor({ tenant, created_at: after.created_at, batch_id: after.batch_id });
    }
    const out = await sdk("list batches", () =>
      this.client.send(new QueryCommand({
        TableName: this.tableName,
        IndexName: "tenant-index",
        KeyConditionExpression: "tenant = :tenant",
        ExpressionAttributeValues: { ":tenant": tenant },
        ScanIndexForward: false,
        Limit: page.limit,
        ExclusiveStartKey: decodeCursor(cursor),
      })).catch(rejectForeignCursor(cursor)),
    );
    return { items: (out.Items ?? []).map((item) => this.#decode(item)), cursor: encodeCursor(out.LastEvaluatedKey) };
  }

  async transition(batchId: string, from: readonly OpenAIBatchStatus[], change: BatchChange): Promise<BatchRecord | undefined> {
    const { status, at, sweep_at, ...fields } = change;
    // Names this very write: the SDK's retry of it, whose first answer was lost, fails on its own
    // condition and finds its token; another caller's transition of the same second does not.
    const token = randomUUID();
    const names: Record<string, string> = { "#status": "status", "#kind": "kind" };
    const values: Record<string, unknown> = { ":status": status, ":openai": "openai", ":token": token };
    const sets = ["#status = :status", "transition_token = :token"];
    if (status !== "validating") {
      sets.push(`${timestampOf(status)} = :at`);
      values[":at"] = at;
    }
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      names[`#${name}`] = name;
      values[`:${name}`] = value;
      sets.push(`#${name} = :${name}`);
    }
    if (sweep_at !== undefined) {
      sets.push("sweep = :shard, sweep_at = :sweepAt");
      Object.assign(values, { ":shard": SWEEP_SHARD, ":sweepAt": sweep_at });
    }
    from.forEach((s, i) => (values[`:from${i}`] = s));
    const out = await conditional(`move batch ${batchId} to ${status}`, () =>
      this.client.send(new UpdateCommand({
        TableName: this.tableName,
        Key: { batch_id: batchId },
        UpdateExpression: `SET ${sets.join(", ")}${sweep_at === undefined ? " REMOVE sweep, sweep_at" : ""}`,
        ConditionExpression: `#kind = :openai AND #status IN (${from.map((_, i) => `:from${i}`).join(", ")})`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: "ALL_NEW",
      })),
    );
    if (out?.Attributes) return this.#decode(out.Attributes);
    const now = await sdk(`get batch ${batchId}`, () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { batch_id: batchId }, ConsistentRead: true })),
    );
    return now.Item?.transition_token === token ? this.#decode(now.Item) : undefined;
  }

  async markQueued(batchId: string): Promise<void> {
    // Conditioned on being a JSON-lines batch (no status): an OpenAI batch's sweep_at is its own.
    await conditional(`mark batch ${batchId} queued`, () =>
      this.client.send(new UpdateCommand({
        TableName: this.tableName,
        Key: { batch_id: batchId },
        UpdateExpression: "REMOVE sweep, sweep_at",
        ConditionExpression: "attribute_exists(batch_id) AND attribute_not_exists(#status)",
        ExpressionAttributeNames: { "#status": "status" },
      })),
    );
  }

  async listDue(now: number, limit: number): Promise<readonly BatchRecord[]> {
    const out = await sdk("list batches due for the sweep", () =>
      this.client.send(new QueryCommand({
        TableName: this.tableName,
        IndexName: "sweep-index",
        KeyConditionExpression: "sweep = :shard AND sweep_at <= :now",
        ExpressionAttributeValues: { ":shard": SWEEP_SHARD, ":now": now },
        Limit: limit,
      })),
    );
    return (out.Items ?? []).map((item) => this.#decode(item));
  }

  #decode(item: Record<string, unknown>): BatchRecord {
    return this.decode(batchItem, item, `batch ${String(item.batch_id)}`);
  }
}

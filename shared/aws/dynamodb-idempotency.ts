import { DeleteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { ConflictError } from "../core/errors.ts";
import type { IdempotencyStore } from "../ports.ts";
import { conditional, DynamoDbTable, sdk } from "./dynamodb-table.ts";

const bindingItem = z.object({ job_id: z.string() });

/** One item per (tenant, key): `key` is `<tenant>#<key>`, so two tenants' keys never meet. */
export class DynamoDbIdempotencyStore extends DynamoDbTable implements IdempotencyStore {
  async bind(tenant: string, key: string, jobId: string, expiresAt: number): Promise<string> {
    const id = bindingKey(tenant, key);
    const put = await conditional(`bind idempotency key`, () =>
      this.client.send(new PutCommand({
        TableName: this.tableName,
        Item: { key: id, tenant, job_id: jobId, expires_at: expiresAt },
        ConditionExpression: "attribute_not_exists(#key)",
        ExpressionAttributeNames: { "#key": "key" },
      })),
    );
    if (put !== undefined) return jobId;
    const out = await sdk("read idempotency key", () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { key: id }, ConsistentRead: true })),
    );
    // Unbound again between the refused put and this read: the caller's retry may bind it.
    if (out.Item === undefined) throw new ConflictError(`idempotency key ${key} is being bound; try again`);
    return this.decode(bindingItem, out.Item, `idempotency key ${id}`).job_id;
  }

  async unbind(tenant: string, key: string, jobId: string): Promise<void> {
    await conditional("unbind idempotency key", () =>
      this.client.send(new DeleteCommand({
        TableName: this.tableName,
        Key: { key: bindingKey(tenant, key) },
        ConditionExpression: "job_id = :job",
        ExpressionAttributeValues: { ":job": jobId },
      })),
    );
  }
}

const bindingKey = (tenant: string, key: string) => `${tenant}#${key}`;

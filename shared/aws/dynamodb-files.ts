import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { FileRecord, FileStore, UploadRecord, UploadStore } from "../ports.ts";
import { conditional, DynamoDbTable, sdk } from "./dynamodb-table.ts";

/**
 * Files' metadata, and uploads in progress, in one table keyed by `file_id` (an upload's item has
 * its `upload_…` id there). Uploads stay out of `tenant-index` because they carry no `created_at`
 * (theirs is `opened_at`): a sparse index, so listing files never meets them. One table, because
 * an upload lives an hour and becomes a file: a second table would be infrastructure for nothing.
 */
const fileItem = z.object({
  file_id: z.string(),
  tenant: z.string(),
  filename: z.string(),
  purpose: z.enum(["batch", "batch_output"]),
  bytes: z.number(),
  created_at: z.number(),
  storage_key: z.string(),
  expires_at: z.number().optional(),
}) satisfies z.ZodType<FileRecord>;

const uploadItem = z.object({
  file_id: z.string(),
  tenant: z.string(),
  filename: z.string(),
  purpose: z.literal("batch"),
  bytes: z.number(),
  mime_type: z.string(),
  opened_at: z.number(),
  expires_at: z.number(),
  storage_key: z.string(),
  status: z.enum(["pending", "completed"]),
  upload_file_id: z.string(),
});

export class DynamoDbFileStore extends DynamoDbTable implements FileStore {
  async create(file: FileRecord): Promise<void> {
    // Unconditional: a retried write, or a completed upload written twice, puts the same item.
    await sdk(`create file ${file.file_id}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: file })));
  }

  async get(fileId: string): Promise<FileRecord | undefined> {
    const out = await sdk(`get file ${fileId}`, () => this.client.send(new GetCommand({ TableName: this.tableName, Key: { file_id: fileId }, ConsistentRead: true })));
    if (!out.Item || !("created_at" in out.Item)) return undefined;
    return this.decode(fileItem, out.Item, `file ${fileId}`);
  }

  async listByTenant(tenant: string, options: Parameters<FileStore["listByTenant"]>[1]): Promise<{ readonly items: readonly FileRecord[]; readonly hasMore: boolean }> {
    const start = await this.#startAfter(tenant, options.after);
    if (start === null) return { items: [], hasMore: false };
    const items: FileRecord[] = [];
    let exclusiveStart = start;
    // A purpose filter applies after Limit: keep reading until one more than asked for is found.
    do {
      const out = await sdk("list files", () =>
        this.client.send(new QueryCommand({
          TableName: this.tableName,
          IndexName: "tenant-index",
          KeyConditionExpression: "tenant = :tenant",
          ...(options.purpose !== undefined && { FilterExpression: "purpose = :purpose" }),
          ExpressionAttributeValues: { ":tenant": tenant, ...(options.purpose !== undefined && { ":purpose": options.purpose }) },
          ScanIndexForward: options.order === "asc",
          Limit: options.limit + 1 - items.length,
          ExclusiveStartKey: exclusiveStart,
        })),
      );
      items.push(...(out.Items ?? []).map((item) => this.decode(fileItem, item, `file ${String(item.file_id)}`)));
      exclusiveStart = out.LastEvaluatedKey;
    } while (exclusiveStart !== undefined && items.length <= options.limit);
    return { items: items.slice(0, options.limit), hasMore: items.length > options.limit };
  }

  /** The index key of the file `after` names; null when it is no file of the tenant's (nothing follows it). */
  async #startAfter(tenant: string, after: string | undefined): Promise<Record<string, unknown> | undefined | null> {
    if (after === undefined) return undefined;
    const file = await this.get(after);
    if (!file || file.tenant !== tenant) return null;
    return { file_id: file.file_id, tenant: file.tenant, created_at: file.created_at };
  }

  async delete(fileId: string): Promise<void> {
    await sdk(`delete file ${fileId}`, () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { file_id: fileId } })));
  }
}

export class DynamoDbUploadStore extends DynamoDbTable implements UploadStore {
  async create(upload: UploadRecord): Promise<void> {
    const { upload_id, created_at, file_id, ...rest } = upload;
    const item = { ...rest, file_id: upload_id, opened_at: created_at, upload_file_id: file_id };
    await sdk(`create upload ${upload_id}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: item })));
  }

  async get(uploadId: string): Promise<UploadRecord | undefined> {
    const out = await sdk(`get upload ${uploadId}`, () => this.client.send(new GetCommand({ TableName: this.tableName, Key: { file_id: uploadId }, ConsistentRead: true })));
    if (!out.Item || !("opened_at" in out.Item)) return undefined;
    const { file_id, opened_at, upload_file_id, ...rest } = this.decode(uploadItem, out.Item, `upload ${uploadId}`);
    return { ...rest, upload_id: file_id, created_at: opened_at, file_id: upload_file_id };
  }

  async complete(uploadId: string): Promise<void> {
    // Conditional: an upload whose record TTL already removed is not written back half.
    await conditional(`complete upload ${uploadId}`, () =>
      this.client.send(new UpdateCommand({
        TableName: this.tableName,
        Key: { file_id: uploadId },
        ConditionExpression: "attribute_exists(file_id)",
        UpdateExpression: "SET #status = :completed",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":completed": "completed" },
      })),
    );
  }
}

import { BatchWriteCommand, QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import type { z } from "zod";
import { BatchlineError, ConflictError } from "../core/errors.ts";
import { translateSdkError } from "./errors.ts";

/**
 * An item read from a table that does not have the shape its adapter writes: written by hand, by
 * an older or newer version, or damaged. It is no caller's fault and trying again will not help.
 */
export class MalformedItemError extends BatchlineError {
  override readonly name = "MalformedItemError";
  readonly tableName: string;
  constructor(tableName: string, item: string, problems: string) {
    super("internal", `table ${tableName}: ${item} is malformed: ${problems}`);
    this.tableName = tableName;
  }
}

/** Runs one DynamoDB call, translating its errors; a failed condition gives `undefined`. */
export async function conditional<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    const translated = translateSdkError(error, what);
    if (translated instanceof ConflictError) return undefined;
    throw translated;
  }
}

export async function sdk<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw translateSdkError(error, what);
  }
}

/** BatchWrite in chunks of 25, retrying what DynamoDB left unprocessed. */
export async function batchWrite(client: DynamoDBDocumentClient, table: string, requests: readonly Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < requests.length; i += 25) {
    let pending: Record<string, unknown>[] | undefined = requests.slice(i, i + 25) as Record<string, unknown>[];
    for (let attempt = 0; pending && pending.length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      if (attempt > 8) throw translateSdkError(Object.assign(new Error("unprocessed items"), { name: "ThrottlingException" }), `batch write ${table}`);
      const out = await sdk(`batch write ${table}`, () => client.send(new BatchWriteCommand({ RequestItems: { [table]: pending as never } })));
      pending = out.UnprocessedItems?.[table] as Record<string, unknown>[] | undefined;
    }
  }
}

/**
 * An instant as a TTL attribute: epoch seconds, rounded up so that nothing expires before the
 * instant it was given. Reads that honour expiry compare against this same value.
 */
export function ttlSeconds(at: Date): number {
  return Math.ceil(at.getTime() / 1000);
}

/** Whether a TTL attribute has passed at `now`: DynamoDB deletes late (up to days), so reads check. */
export function hasExpired(expiresAtSeconds: number, now: Date): boolean {
  return expiresAtSeconds * 1000 <= now.getTime();
}

type TableOptions = { readonly client: DynamoDBDocumentClient; readonly tableName: string };

/** One DynamoDB table behind a port: the client, the table name, and decoding what it reads. */
export abstract class DynamoDbTable {
  protected readonly client: DynamoDBDocumentClient;
  protected readonly tableName: string;

  constructor(options: TableOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
  }

  /** The item as the schema reads it, or a MalformedItemError naming the table, the item and every problem. */
  protected decode<Schema extends z.ZodType>(schema: Schema, item: unknown, what: string): z.output<Schema> {
    const parsed = schema.safeParse(item);
    if (parsed.success) return parsed.data;
    const problems = parsed.error.issues.map((issue) => `${issue.path.length === 0 ? "item" : issue.path.join(".")}: ${issue.message}`).join("; ");
    throw new MalformedItemError(this.tableName, what, problems);
  }

  /** Every item a query matches, following LastEvaluatedKey to the end. */
  protected async queryAll(what: string, query: Omit<QueryCommandInput, "TableName" | "ExclusiveStartKey">): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await sdk(what, () => this.client.send(new QueryCommand({ TableName: this.tableName, ...query, ExclusiveStartKey: start })));
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return items;
  }
}

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type DynamoDBClient, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { type ApiKeyRecord, generateApiKey, hashApiKey } from "#shared/core/api-keys";

export const DEV_TENANT = "dev";
const KEY_FILE = "dev-api-key";

export type DevKeyOptions = {
  /** BATCHLINE_API_KEY, when the developer chose one. */
  readonly key?: string | undefined;
  /** Where a generated key is kept between starts; undefined: a new key each start (tests). */
  readonly dataDir?: string | undefined;
};

/** The development API key: the given one, else the one kept in the data dir, else a new one (kept). */
export async function resolveDevApiKey({ key, dataDir }: DevKeyOptions): Promise<string> {
  if (key !== undefined && key.trim() !== "") return key.trim();
  if (dataDir === undefined) return generateApiKey();
  const file = join(dataDir, KEY_FILE);
  try {
    const kept = (await readFile(file, "utf8")).trim();
    if (kept !== "") return kept;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const generated = generateApiKey();
  await writeFile(file, `${generated}\n`, { mode: 0o600 });
  return generated;
}

/**
 * Writes the key's ApiKeyRecord (shared/core/api-keys.ts) for tenant "dev". An update rather than
 * a put, so that `created_at` stays the time the key was first registered.
 */
export async function registerDevApiKey(ddb: DynamoDBClient, tableName: string, key: string, now: Date): Promise<ApiKeyRecord> {
  // The developer runs the stack: their key may also tune the routes (ops).
  const record: ApiKeyRecord = { key_hash: hashApiKey(key), tenant: DEV_TENANT, name: "development key", created_at: now.toISOString(), role: "admin" };
  const output = await ddb.send(
    new UpdateItemCommand({
      TableName: tableName,
      Key: { key_hash: { S: record.key_hash } },
      UpdateExpression: "SET tenant = :tenant, #name = :name, #role = :role, created_at = if_not_exists(created_at, :created_at)",
      ExpressionAttributeNames: { "#name": "name", "#role": "role" },
      ExpressionAttributeValues: {
        ":tenant": { S: record.tenant },
        ":name": { S: record.name },
        ":role": { S: "admin" },
        ":created_at": { S: record.created_at },
      },
      ReturnValues: "ALL_NEW",
    }),
  );
  return { ...record, created_at: output.Attributes?.created_at?.S ?? record.created_at };
}

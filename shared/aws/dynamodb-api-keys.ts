import { DeleteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { ApiKeyRecord, Principal } from "../core/api-keys.ts";
import type { ApiKeyStore } from "../ports.ts";
import { DynamoDbTable, sdk } from "./dynamodb-table.ts";

const role = z.enum(["member", "admin"]);
/** What authenticating needs of a key's item; a key without a role is a member's. */
const principalItem = z.object({ tenant: z.string().min(1), role: role.optional() });
const apiKeyItem = z.object({
  key_hash: z.string(),
  tenant: z.string(),
  name: z.string(),
  created_at: z.string(),
  role: role.optional(),
}) satisfies z.ZodType<ApiKeyRecord>;

export class DynamoDbApiKeyStore extends DynamoDbTable implements ApiKeyStore {
  async principalOf(keyHash: string): Promise<Principal | undefined> {
    const out = await sdk("look up API key", () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { key_hash: keyHash } })),
    );
    if (out.Item === undefined) return undefined;
    const { tenant, role } = this.decode(principalItem, out.Item, `API key ${keyHash}`);
    return { tenant, role: role ?? "member" };
  }

  async listByTenant(tenant: string): Promise<readonly ApiKeyRecord[]> {
    const items = await this.queryAll("list API keys", { IndexName: "tenant-index", KeyConditionExpression: "tenant = :t", ExpressionAttributeValues: { ":t": tenant } });
    return items.map((item) => this.decode(apiKeyItem, item, `API key ${String(item.key_hash)}`));
  }

  async put(record: ApiKeyRecord): Promise<void> {
    await sdk("store API key", () => this.client.send(new PutCommand({ TableName: this.tableName, Item: record })));
  }

  async delete(keyHash: string): Promise<void> {
    await sdk("delete API key", () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { key_hash: keyHash } })));
  }
}

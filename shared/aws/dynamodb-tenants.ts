import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { TenantQuota } from "../core/quotas.ts";
import type { TenantStore } from "../ports.ts";
import { DynamoDbTable, sdk } from "./dynamodb-table.ts";

const quotaItem = z.object({ max_jobs_in_flight: z.number(), tokens_per_minute: z.number() }) satisfies z.ZodType<TenantQuota>;

export class DynamoDbTenantStore extends DynamoDbTable implements TenantStore {
  async quotaOf(tenant: string): Promise<TenantQuota | undefined> {
    const out = await sdk(`get quota of ${tenant}`, () => this.client.send(new GetCommand({ TableName: this.tableName, Key: { tenant } })));
    return out.Item && this.decode(quotaItem, out.Item, `quota of tenant ${tenant}`);
  }

  async setQuota(tenant: string, quota: TenantQuota): Promise<void> {
    const { max_jobs_in_flight, tokens_per_minute } = quota;
    await sdk(`set quota of ${tenant}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: { tenant, max_jobs_in_flight, tokens_per_minute } })));
  }
}

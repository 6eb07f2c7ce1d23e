import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { WEBHOOK_EVENT_TYPES, type WebhookEndpoint } from "../core/webhooks.ts";
import type { WebhookEndpointStore } from "../ports.ts";
import { conditional, DynamoDbTable } from "./dynamodb-table.ts";

const endpointItem = z.object({
  tenant: z.string(),
  slot: z.number().int(),
  endpoint_id: z.string(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  created_at: z.number().int(),
  secret: z.string(),
});

/**
 * Endpoints keyed by (tenant, slot), slot 0 to limit - 1: a tenant can never hold more than the
 * limit, even under concurrent creates, since a create takes a free slot with a conditional put
 * (no count to read and race on; dynalite has no transactions). One Query lists a tenant's.
 */
export class DynamoDbWebhookEndpointStore extends DynamoDbTable implements WebhookEndpointStore {
  async create(endpoint: WebhookEndpoint, limit: number): Promise<boolean> {
    for (;;) {
      const taken = new Set((await this.#items(endpoint.tenant)).map((item) => item.slot));
      const slot = Array.from({ length: limit }, (_, i) => i).find((i) => !taken.has(i));
      if (slot === undefined) return false;
      const put = await conditional("create webhook endpoint", () =>
        this.client.send(new PutCommand({ TableName: this.tableName, Item: { ...endpoint, slot }, ConditionExpression: "attribute_not_exists(slot)" })),
      );
      // Lost the slot to a concurrent create: read again.
      if (put !== undefined) return true;
    }
  }

  async listByTenant(tenant: string): Promise<readonly WebhookEndpoint[]> {
    return (await this.#items(tenant)).map(({ slot: _slot, ...endpoint }) => endpoint);
  }

  async delete(tenant: string, endpointId: string): Promise<boolean> {
    const item = (await this.#items(tenant)).find((i) => i.endpoint_id === endpointId);
    if (!item) return false;
    const deleted = await conditional("delete webhook endpoint", () =>
      this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: { tenant, slot: item.slot }, ConditionExpression: "endpoint_id = :id", ExpressionAttributeValues: { ":id": endpointId } }),
      ),
    );
    return deleted !== undefined;
  }

  async #items(tenant: string) {
    const items = await this.queryAll("list webhook endpoints", { KeyConditionExpression: "tenant = :t", ExpressionAttributeValues: { ":t": tenant }, ConsistentRead: true });
    return items.map((item) => this.decode(endpointItem, item, `webhook endpoint ${String(item.endpoint_id)}`));
  }
}

import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { Connection, SubscriptionStore } from "../ports.ts";
import { batchWrite, DynamoDbTable, sdk } from "./dynamodb-table.ts";

/** The key of a subscription: all that the connection index projects. */
const subscriptionKey = z.object({ topic: z.string(), connection_id: z.string() });

/** One item per (topic, connection); the connection index finds a closing connection's topics. */
export class DynamoDbSubscriptionStore extends DynamoDbTable implements SubscriptionStore {
  async subscribe(topic: string, connection: Connection): Promise<void> {
    const { connection_id, tenant, expires_at } = connection;
    await sdk("subscribe", () =>
      this.client.send(new PutCommand({ TableName: this.tableName, Item: { topic, connection_id, tenant, expires_at } })),
    );
  }

  async subscribers(topic: string): Promise<readonly string[]> {
    const items = await this.queryAll(`query subscribers of ${topic}`, { KeyConditionExpression: "topic = :v", ExpressionAttributeValues: { ":v": topic } });
    return items.map((item) => this.#decodeKey(item).connection_id);
  }

  async removeConnection(connectionId: string): Promise<void> {
    const items = await this.queryAll(`query subscriptions of ${connectionId}`, {
      IndexName: "connection-index",
      KeyConditionExpression: "connection_id = :v",
      ExpressionAttributeValues: { ":v": connectionId },
    });
    const keys = items.map((item) => this.#decodeKey(item));
    await batchWrite(this.client, this.tableName, keys.map((key) => ({ DeleteRequest: { Key: key } })));
  }

  #decodeKey(item: Record<string, unknown>) {
    return this.decode(subscriptionKey, item, `subscription ${String(item.topic)} of ${String(item.connection_id)}`);
  }
}

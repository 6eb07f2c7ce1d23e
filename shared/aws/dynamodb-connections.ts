import { DeleteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { Connection, ConnectionStore } from "../ports.ts";
import { DynamoDbTable, sdk } from "./dynamodb-table.ts";

const connectionItem = z.object({ connection_id: z.string(), tenant: z.string(), connected_at: z.string(), expires_at: z.number() }) satisfies z.ZodType<Connection>;

export class DynamoDbConnectionStore extends DynamoDbTable implements ConnectionStore {
  async put(connection: Connection): Promise<void> {
    await sdk("store connection", () => this.client.send(new PutCommand({ TableName: this.tableName, Item: connection })));
  }

  async get(connectionId: string): Promise<Connection | undefined> {
    const out = await sdk("get connection", () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { connection_id: connectionId }, ConsistentRead: true })),
    );
    return out.Item && this.decode(connectionItem, out.Item, `connection ${connectionId}`);
  }

  async delete(connectionId: string): Promise<void> {
    await sdk("delete connection", () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { connection_id: connectionId } })));
  }
}

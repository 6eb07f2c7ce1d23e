import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { Principal } from "../core/api-keys.ts";
import type { TicketStore } from "../ports.ts";
import { DynamoDbTable, hasExpired, sdk, ttlSeconds } from "./dynamodb-table.ts";

const ticketItem = z.object({ tenant: z.string().min(1), role: z.enum(["member", "admin"]), expires_at: z.number() });

export class DynamoDbTicketStore extends DynamoDbTable implements TicketStore {
  async put(ticketHash: string, principal: Principal, expiresAt: Date): Promise<void> {
    const item = { ticket_hash: ticketHash, tenant: principal.tenant, role: principal.role, expires_at: ttlSeconds(expiresAt) };
    await sdk("store WebSocket ticket", () => this.client.send(new PutCommand({ TableName: this.tableName, Item: item })));
  }

  async take(ticketHash: string, now: Date): Promise<Principal | undefined> {
    // Deleting and reading in one call is what makes a ticket work once, even under a race.
    const out = await sdk("take WebSocket ticket", () =>
      this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { ticket_hash: ticketHash }, ReturnValues: "ALL_OLD" })),
    );
    if (out.Attributes === undefined) return undefined;
    const ticket = this.decode(ticketItem, out.Attributes, `ticket ${ticketHash}`);
    return hasExpired(ticket.expires_at, now) ? undefined : { tenant: ticket.tenant, role: ticket.role };
  }
}

import { describe } from "vitest";
import { DynamoDbTicketStore } from "#shared/aws/dynamodb-tickets";
import { MemoryTickets } from "../helpers/fakes.ts";
import { ticketStoreContract } from "./ticket-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("TicketStore contract", () => {
  describe("memory", () => ticketStoreContract(async () => new MemoryTickets()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    ticketStoreContract(async () => new DynamoDbTicketStore(await table("WsTicketsTable")));
  });
});

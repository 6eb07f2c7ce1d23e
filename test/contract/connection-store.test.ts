import { describe } from "vitest";
import { DynamoDbConnectionStore } from "#shared/aws/dynamodb-connections";
import { MemoryConnections } from "../helpers/fakes.ts";
import { connectionStoreContract } from "./connection-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("ConnectionStore contract", () => {
  describe("memory", () => connectionStoreContract(async () => new MemoryConnections()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    connectionStoreContract(async () => new DynamoDbConnectionStore(await table("ConnectionsTable")));
  });
});

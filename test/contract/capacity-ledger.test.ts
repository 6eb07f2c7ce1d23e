import { describe } from "vitest";
import { DynamoDbCapacityLedger } from "#shared/aws/dynamodb-capacity-ledger";
import { MemoryLedger } from "../helpers/fakes.ts";
import { capacityLedgerContract } from "./capacity-ledger.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("CapacityLedger contract", () => {
  describe("memory", () => capacityLedgerContract(async () => new MemoryLedger()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    capacityLedgerContract(async () => new DynamoDbCapacityLedger(await table("CapacityTable")));
  });
});

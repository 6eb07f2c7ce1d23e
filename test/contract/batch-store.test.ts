import { describe } from "vitest";
import { DynamoDbBatchStore } from "#shared/aws/dynamodb-batches";
import { MemoryBatchStore } from "../helpers/fakes.ts";
import { batchStoreContract } from "./batch-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("BatchStore contract", () => {
  describe("memory", () => batchStoreContract(async () => new MemoryBatchStore()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    batchStoreContract(async () => new DynamoDbBatchStore(await table("BatchesTable")));
  });
});

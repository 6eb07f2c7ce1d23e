import { describe } from "vitest";
import { DynamoDbIdempotencyStore } from "#shared/aws/dynamodb-idempotency";
import { MemoryIdempotencyStore } from "../helpers/fakes.ts";
import { idempotencyStoreContract } from "./idempotency-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("IdempotencyStore contract", () => {
  describe("memory", () => idempotencyStoreContract(async () => new MemoryIdempotencyStore()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    idempotencyStoreContract(async () => new DynamoDbIdempotencyStore(await table("IdempotencyKeysTable")));
  });
});

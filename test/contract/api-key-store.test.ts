import { describe } from "vitest";
import { DynamoDbApiKeyStore } from "#shared/aws/dynamodb-api-keys";
import { MemoryApiKeys } from "../helpers/fakes.ts";
import { apiKeyStoreContract } from "./api-key-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("ApiKeyStore contract", () => {
  describe("memory", () => apiKeyStoreContract(async () => new MemoryApiKeys()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    apiKeyStoreContract(async () => new DynamoDbApiKeyStore(await table("ApiKeysTable")));
  });
});

import { describe } from "vitest";
import { DynamoDbTenantStore } from "#shared/aws/dynamodb-tenants";
import { MemoryTenants } from "../helpers/fakes.ts";
import { tenantStoreContract } from "./tenant-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("TenantStore contract", () => {
  describe("memory", () => tenantStoreContract(async () => new MemoryTenants()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    tenantStoreContract(async () => new DynamoDbTenantStore(await table("TenantsTable")));
  });
});

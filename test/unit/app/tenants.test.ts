import { describe, expect, it } from "vitest";
import { authenticate } from "#shared/app/auth";
import { createTenant, rotateTenantKey } from "#shared/app/tenants";
import { ConflictError, NotFoundError, UnauthorizedError, ValidationError } from "#shared/core/errors";
import { memoryDeps } from "../../helpers/fakes.ts";

describe("tenants", () => {
  it("creates a tenant whose key authenticates, storing only its hash", async () => {
    const deps = memoryDeps();
    const { key, record } = await createTenant(deps, "acme");
    expect(key).toMatch(/^bl_[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify([...deps.apiKeys.records.values()])).not.toContain(key);
    expect(record).toMatchObject({ tenant: "acme", role: "member" });
    await expect(authenticate(deps.apiKeys, key)).resolves.toEqual({ tenant: "acme", role: "member" });
  });

  it("refuses a second create and a bad name", async () => {
    const deps = memoryDeps();
    await createTenant(deps, "acme");
    await expect(createTenant(deps, "acme")).rejects.toThrow(ConflictError);
    await expect(createTenant(deps, "Acme Corp")).rejects.toThrow(ValidationError);
  });

  it("rotates: the new key works at once and every old one stops", async () => {
    const deps = memoryDeps();
    const { key: old } = await createTenant(deps, "acme", "admin");
    const { key: fresh, revoked } = await rotateTenantKey(deps, "acme");
    expect(revoked).toBe(1);
    await expect(authenticate(deps.apiKeys, old)).rejects.toThrow(UnauthorizedError);
    await expect(authenticate(deps.apiKeys, fresh)).resolves.toEqual({ tenant: "acme", role: "admin" });
  });

  it("cannot rotate a tenant that does not exist", async () => {
    await expect(rotateTenantKey(memoryDeps(), "ghost")).rejects.toThrow(NotFoundError);
  });
});

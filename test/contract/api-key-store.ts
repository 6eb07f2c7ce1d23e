import { expect, it } from "vitest";
import type { ApiKeyRecord } from "#shared/core/api-keys";
import type { ApiKeyStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

function keyOf(tenant: string, change: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return { key_hash: `sha256-${uniqueSuffix()}`, tenant, name: `${tenant} key`, created_at: "2026-11-27T12:00:00.000Z", ...change };
}

const byHash = (a: ApiKeyRecord, b: ApiKeyRecord) => a.key_hash.localeCompare(b.key_hash);

export function apiKeyStoreContract(makeStore: () => Promise<ApiKeyStore>): void {
  it("gives the tenant and role of a stored key hash (a member's when it has no role), and undefined for an unknown hash", async () => {
    // Prepare
    const store = await makeStore();
    const [member, admin] = [keyOf("acme"), keyOf("ops", { role: "admin" })];
    await store.put(member);
    await store.put(admin);

    // Act
    const principals = [await store.principalOf(member.key_hash), await store.principalOf(admin.key_hash), await store.principalOf(`sha256-${uniqueSuffix()}`)];

    // Assess
    expect(principals).toEqual([{ tenant: "acme", role: "member" }, { tenant: "ops", role: "admin" }, undefined]);
  });

  it("lists every key record of a tenant, and only that tenant's", async () => {
    // Prepare
    const store = await makeStore();
    const tenant = `tenant-${uniqueSuffix()}`;
    const mine = [keyOf(tenant), keyOf(tenant, { role: "admin" }), keyOf(tenant, { name: "ci" })];
    for (const record of [...mine, keyOf(`tenant-${uniqueSuffix()}`)]) await store.put(record);

    // Act
    const listed = await store.listByTenant(tenant);

    // Assess
    expect(listed.toSorted(byHash)).toEqual(mine.toSorted(byHash));
    expect(await store.listByTenant(`tenant-${uniqueSuffix()}`)).toEqual([]);
  });

  it("replaces the record of a key hash put again", async () => {
    // Prepare
    const store = await makeStore();
    const record = keyOf("acme");
    await store.put(record);

    // Act
    await store.put({ ...record, role: "admin", name: "promoted" });

    // Assess
    expect(await store.principalOf(record.key_hash)).toEqual({ tenant: "acme", role: "admin" });
    expect(await store.listByTenant("acme")).toContainEqual({ ...record, role: "admin", name: "promoted" });
  });

  it("forgets a deleted key, and deletes an unknown one without complaint", async () => {
    // Prepare
    const store = await makeStore();
    const tenant = `tenant-${uniqueSuffix()}`;
    const [deleted, kept] = [keyOf(tenant), keyOf(tenant)];
    await store.put(deleted);
    await store.put(kept);

    // Act
    await store.delete(deleted.key_hash);
    const unknown = store.delete(`sha256-${uniqueSuffix()}`);

    // Assess
    await expect(unknown).resolves.toBeUndefined();
    expect(await store.principalOf(deleted.key_hash)).toBeUndefined();
    expect(await store.listByTenant(tenant)).toEqual([kept]);
  });
}

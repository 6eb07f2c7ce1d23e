import { expect, it } from "vitest";
import type { BatchRecord } from "#shared/core/batches";
import { ConflictError, ValidationError } from "#shared/core/errors";
import type { BatchStore, Page } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const newTenant = () => `tenant-${uniqueSuffix()}`;

/** The n-th batch of a tenant: created n seconds after noon, with n jobs. */
function batch(tenant: string, n: number): BatchRecord {
  return {
    batch_id: `batch_${n}_${uniqueSuffix()}`,
    tenant,
    created_at: new Date(Date.parse("2026-11-27T12:00:00Z") + n * 1000).toISOString(),
    total: n,
    models: ["llama-2-7b", "llama-3-8b"],
    metadata: { n: String(n) },
    expires_at: Date.parse("2026-12-27T12:00:00Z") / 1000,
  };
}

const totals = (page: Page<BatchRecord>) => page.items.map((b) => b.total);

export function batchStoreContract(makeStore: () => Promise<BatchStore>): void {
  it("gives back a created batch as written, and undefined for an unknown one", async () => {
    // Prepare
    const store = await makeStore();
    const created = batch(newTenant(), 1);
    const withoutMetadata = { ...batch(newTenant(), 2), metadata: undefined };

    // Act
    await store.create(created);
    await store.create(withoutMetadata);

    // Assess
    expect(await store.get(created.batch_id)).toEqual(created);
    expect(await store.get(withoutMetadata.batch_id)).not.toHaveProperty("metadata");
    expect(await store.get(`batch_${uniqueSuffix()}`)).toBeUndefined();
  });

  it("refuses another batch under an id that exists, and leaves the first one as it was", async () => {
    // Prepare
    const store = await makeStore();
    const created = batch(newTenant(), 1);
    await store.create(created);

    // Act
    const again = store.create({ ...created, total: 99 });

    // Assess
    await expect(again).rejects.toBeInstanceOf(ConflictError);
    expect(await store.get(created.batch_id)).toEqual(created);
  });

  it("takes the very same batch created again for its own write whose answer was lost", async () => {
    // Prepare
    const store = await makeStore();
    const created = batch(newTenant(), 1);
    await store.create(created);

    // Act
    const again = store.create({ ...created, metadata: { ...created.metadata } });

    // Assess
    await expect(again).resolves.toBeUndefined();
    expect(await store.get(created.batch_id)).toEqual(created);
  });

  it("lists a tenant's batches newest first, page by page, and only that tenant's", async () => {
    // Prepare
    const store = await makeStore();
    const tenant = newTenant();
    for (const b of [...[3, 1, 5, 2, 4].map((n) => batch(tenant, n)), batch(newTenant(), 6)]) await store.create(b);

    // Act
    const first = await store.listByTenant(tenant, { limit: 2 });
    const second = await store.listByTenant(tenant, { limit: 2, cursor: first.cursor });
    const third = await store.listByTenant(tenant, { limit: 2, cursor: second.cursor });

    // Assess
    expect([totals(first), totals(second), totals(third)]).toEqual([[5, 4], [3, 2], [1]]);
    expect(third.cursor).toBeUndefined();
  });

  it("gives a cursor with every full page: a tenant filling its last page ends on an empty one", async () => {
    // Prepare
    const store = await makeStore();
    const tenant = newTenant();
    for (const n of [1, 2]) await store.create(batch(tenant, n));

    // Act
    const full = await store.listByTenant(tenant, { limit: 2 });
    const after = await store.listByTenant(tenant, { limit: 2, cursor: full.cursor });

    // Assess
    expect(totals(full)).toEqual([2, 1]);
    expect(full.cursor).toEqual(expect.any(String));
    expect(after).toEqual({ items: [], cursor: undefined });
  });

  it("gives an empty page and no cursor for a tenant with no batches", async () => {
    const store = await makeStore();
    expect(await store.listByTenant(newTenant(), { limit: 2 })).toEqual({ items: [], cursor: undefined });
  });

  it("refuses a cursor it did not hand out, and one of another tenant, as a ValidationError on the cursor", async () => {
    // Prepare
    const store = await makeStore();
    const [tenant, other] = [newTenant(), newTenant()];
    for (const n of [1, 2, 3]) await store.create(batch(tenant, n));
    for (const n of [1, 2, 3]) await store.create(batch(other, n));
    const { cursor: cursorOfOther } = await store.listByTenant(other, { limit: 1 });
    const wrongKey = Buffer.from(JSON.stringify({ job_id: "job_1" })).toString("base64url");

    // Act
    const refused = await Promise.all(
      ["not a cursor", wrongKey, cursorOfOther].map((cursor) => store.listByTenant(tenant, { limit: 1, cursor }).then(() => undefined, (error: unknown) => error)),
    );

    // Assess
    expect(cursorOfOther).toBeDefined();
    for (const error of refused) {
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ field: "cursor" });
    }
  });
}

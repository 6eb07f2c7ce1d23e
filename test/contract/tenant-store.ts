import { expect, it } from "vitest";
import type { TenantStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const newTenant = () => `tenant-${uniqueSuffix()}`;

export function tenantStoreContract(makeStore: () => Promise<TenantStore>): void {
  it("gives no quota for a tenant that has none of its own", async () => {
    const store = await makeStore();
    expect(await store.quotaOf(newTenant())).toBeUndefined();
  });

  it("gives the quota set for a tenant, and only that tenant", async () => {
    // Prepare
    const store = await makeStore();
    const [tenant, other] = [newTenant(), newTenant()];

    // Act
    await store.setQuota(tenant, { max_jobs_in_flight: 10, tokens_per_minute: 5_000 });

    // Assess
    expect(await store.quotaOf(tenant)).toEqual({ max_jobs_in_flight: 10, tokens_per_minute: 5_000 });
    expect(await store.quotaOf(other)).toBeUndefined();
  });

  it("replaces a tenant's quota when it is set again", async () => {
    // Prepare
    const store = await makeStore();
    const tenant = newTenant();
    await store.setQuota(tenant, { max_jobs_in_flight: 10, tokens_per_minute: 5_000 });

    // Act
    await store.setQuota(tenant, { max_jobs_in_flight: 3, tokens_per_minute: 900 });

    // Assess
    expect(await store.quotaOf(tenant)).toEqual({ max_jobs_in_flight: 3, tokens_per_minute: 900 });
  });
}

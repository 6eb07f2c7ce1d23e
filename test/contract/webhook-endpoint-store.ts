import { expect, it } from "vitest";
import { secretFrom, WEBHOOK_EVENT_TYPES, type WebhookEndpoint } from "#shared/core/webhooks";
import type { WebhookEndpointStore } from "#shared/ports";

const endpoint = (id: string, tenant = "acme"): WebhookEndpoint => ({
  endpoint_id: id,
  tenant,
  url: `https://example.com/${id}`,
  events: [...WEBHOOK_EVENT_TYPES],
  created_at: 1_800_000_000,
  secret: secretFrom(new Uint8Array(32).fill(id.length)),
});

/** What every WebhookEndpointStore does: each test gets a fresh, empty store. */
export function webhookEndpointStoreContract(makeStore: () => Promise<WebhookEndpointStore>) {
  it("keeps an endpoint, secret and all, and lists it under its tenant only", async () => {
    const store = await makeStore();
    expect(await store.create(endpoint("we_a"), 10)).toBe(true);
    expect(await store.listByTenant("acme")).toEqual([endpoint("we_a")]);
    expect(await store.listByTenant("globex")).toEqual([]);
  });

  it("refuses an endpoint past the limit, per tenant, even when created concurrently", async () => {
    const store = await makeStore();
    const created = await Promise.all(Array.from({ length: 6 }, (_, i) => store.create(endpoint(`we_${i}`), 4)));
    expect(created.filter(Boolean)).toHaveLength(4);
    expect(await store.listByTenant("acme")).toHaveLength(4);
    expect(await store.create(endpoint("we_other", "globex"), 4)).toBe(true);
  });

  it("deletes a tenant's endpoint, frees its place, and says whether there was one", async () => {
    const store = await makeStore();
    await store.create(endpoint("we_a"), 1);
    expect(await store.delete("globex", "we_a")).toBe(false);
    expect(await store.delete("acme", "we_a")).toBe(true);
    expect(await store.delete("acme", "we_a")).toBe(false);
    expect(await store.create(endpoint("we_b"), 1)).toBe(true);
    expect((await store.listByTenant("acme")).map((e) => e.endpoint_id)).toEqual(["we_b"]);
  });
}

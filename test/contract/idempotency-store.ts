import { expect, it } from "vitest";
import type { IdempotencyStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const expiresAt = Date.parse("2026-12-27T12:00:00Z") / 1000;
const newKey = () => `key-${uniqueSuffix()}`;

export function idempotencyStoreContract(makeStore: () => Promise<IdempotencyStore>): void {
  it("binds a key to the first job id and gives that id back to later binds", async () => {
    // Prepare
    const store = await makeStore();
    const key = newKey();

    // Act
    const first = await store.bind("acme", key, "job_first", expiresAt);
    const second = await store.bind("acme", key, "job_second", expiresAt);

    // Assess
    expect([first, second]).toEqual(["job_first", "job_first"]);
  });

  it("keeps the same key of two tenants apart", async () => {
    // Prepare
    const store = await makeStore();
    const key = newKey();

    // Act
    const acme = await store.bind("acme", key, "job_acme", expiresAt);
    const globex = await store.bind("globex", key, "job_globex", expiresAt);

    // Assess
    expect([acme, globex]).toEqual(["job_acme", "job_globex"]);
  });

  it("binds one job among many concurrent binds of one key, and gives it to all of them", async () => {
    // Prepare
    const store = await makeStore();
    const key = newKey();

    // Act
    const bound = await Promise.all(Array.from({ length: 8 }, (_, i) => store.bind("acme", key, `job_${i}`, expiresAt)));

    // Assess
    expect(new Set(bound).size).toBe(1);
    expect(await store.bind("acme", key, "job_late", expiresAt)).toBe(bound[0]);
  });

  it("frees a key unbound by the job it is bound to, for the next bind", async () => {
    // Prepare
    const store = await makeStore();
    const key = newKey();
    await store.bind("acme", key, "job_refused", expiresAt);

    // Act
    await store.unbind("acme", key, "job_refused");
    const next = await store.bind("acme", key, "job_next", expiresAt);

    // Assess
    expect(next).toBe("job_next");
  });

  it("leaves a binding alone when another job, or another tenant, unbinds the key", async () => {
    // Prepare
    const store = await makeStore();
    const key = newKey();
    await store.bind("acme", key, "job_bound", expiresAt);

    // Act
    await store.unbind("acme", key, "job_other");
    await store.unbind("globex", key, "job_bound");

    // Assess
    expect(await store.bind("acme", key, "job_next", expiresAt)).toBe("job_bound");
  });

  it("unbinds a key nobody bound without complaint", async () => {
    const store = await makeStore();
    await expect(store.unbind("acme", newKey(), "job_none")).resolves.toBeUndefined();
  });
}

import { expect, it } from "vitest";
import type { Principal } from "#shared/core/api-keys";
import type { TicketStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const noon = Date.parse("2026-11-27T12:00:00.000Z");
const at = (ms: number) => new Date(noon + ms);
const newHash = () => `ticket-${uniqueSuffix()}`;
const member: Principal = { tenant: "acme", role: "member" };

export function ticketStoreContract(makeStore: () => Promise<TicketStore>): void {
  it("gives a ticket's principal once: a second take gets nothing", async () => {
    // Prepare
    const store = await makeStore();
    const hash = newHash();
    await store.put(hash, { tenant: "ops", role: "admin" }, at(60_000));

    // Act
    const first = await store.take(hash, at(1_000));
    const second = await store.take(hash, at(2_000));

    // Assess
    expect(first).toEqual({ tenant: "ops", role: "admin" });
    expect(second).toBeUndefined();
  });

  it("gives the principal to exactly one of many concurrent takes", async () => {
    // Prepare
    const store = await makeStore();
    const hash = newHash();
    await store.put(hash, member, at(60_000));

    // Act
    const taken = await Promise.all(Array.from({ length: 6 }, () => store.take(hash, at(1_000))));

    // Assess
    expect(taken.filter((p) => p !== undefined)).toEqual([member]);
  });

  it("refuses a ticket at its expiry and after it, and gives one a moment before", async () => {
    // Prepare
    const store = await makeStore();
    const [early, atExpiry, late] = [newHash(), newHash(), newHash()];
    for (const hash of [early, atExpiry, late]) await store.put(hash, member, at(60_000));

    // Act
    const taken = [await store.take(early, at(59_999)), await store.take(atExpiry, at(60_000)), await store.take(late, at(61_000))];

    // Assess
    expect(taken).toEqual([member, undefined, undefined]);
  });

  it("keeps expiries in whole seconds, rounded up: a ticket lives to the end of the second it expires in", async () => {
    // Prepare
    const store = await makeStore();
    const [within, after] = [newHash(), newHash()];
    for (const hash of [within, after]) await store.put(hash, member, at(60_200));

    // Act
    const taken = [await store.take(within, at(60_700)), await store.take(after, at(61_000))];

    // Assess
    expect(taken).toEqual([member, undefined]);
  });

  it("gives nothing for an unknown ticket", async () => {
    const store = await makeStore();
    expect(await store.take(newHash(), at(0))).toBeUndefined();
  });
}

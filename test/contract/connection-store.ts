import { expect, it } from "vitest";
import type { Connection, ConnectionStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

function connection(change: Partial<Connection> = {}): Connection {
  return { connection_id: `Ab${uniqueSuffix()}=`, tenant: "acme", connected_at: "2026-11-27T12:00:00.000Z", expires_at: 1_900_000_000, ...change };
}

export function connectionStoreContract(makeStore: () => Promise<ConnectionStore>): void {
  it("stores, reads and deletes a connection", async () => {
    // Prepare
    const store = await makeStore();
    const stored = connection();

    // Act
    await store.put(stored);
    const read = await store.get(stored.connection_id);
    await store.delete(stored.connection_id);
    const deleted = await store.get(stored.connection_id);

    // Assess
    expect(read).toEqual(stored);
    expect(deleted).toBeUndefined();
  });

  it("replaces a connection put again under its id", async () => {
    // Prepare
    const store = await makeStore();
    const first = connection();
    await store.put(first);

    // Act
    await store.put({ ...first, tenant: "globex", expires_at: 1_900_000_100 });

    // Assess
    expect(await store.get(first.connection_id)).toEqual({ ...first, tenant: "globex", expires_at: 1_900_000_100 });
  });

  it("gives undefined for an unknown connection, and deletes one without complaint", async () => {
    // Prepare
    const store = await makeStore();
    const unknown = `gone-${uniqueSuffix()}`;

    // Act
    const deleted = store.delete(unknown);

    // Assess
    await expect(deleted).resolves.toBeUndefined();
    expect(await store.get(unknown)).toBeUndefined();
  });
}

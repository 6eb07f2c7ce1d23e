import { expect, it } from "vitest";
import type { Connection, SubscriptionStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const connectionOf = (connectionId: string): Connection => ({ connection_id: connectionId, tenant: "acme", connected_at: "2026-11-27T12:00:00.000Z", expires_at: 1_900_000_000 });
const newTopic = (kind: "job" | "batch" = "job") => `${kind}#${kind}_${uniqueSuffix()}`;
const newConnection = (name: string) => `conn-${name}-${uniqueSuffix()}`;
const sorted = (ids: readonly string[]) => ids.toSorted();

export function subscriptionStoreContract(makeStore: () => Promise<SubscriptionStore>): void {
  it("lists every connection subscribed to a topic once, and none for a topic nobody follows", async () => {
    // Prepare
    const store = await makeStore();
    const topic = newTopic();
    const [a, b] = [newConnection("a"), newConnection("b")];

    // Act
    await store.subscribe(topic, connectionOf(a));
    await store.subscribe(topic, connectionOf(b));
    await store.subscribe(topic, connectionOf(a));

    // Assess
    expect(sorted(await store.subscribers(topic))).toEqual(sorted([a, b]));
    expect(await store.subscribers(newTopic())).toEqual([]);
  });

  it("removes a connection from all its topics and leaves other connections subscribed", async () => {
    // Prepare
    const store = await makeStore();
    const [jobTopic, batchTopic, otherTopic] = [newTopic(), newTopic("batch"), newTopic()];
    const [leaving, staying] = [newConnection("leaving"), newConnection("staying")];
    for (const topic of [jobTopic, batchTopic]) {
      await store.subscribe(topic, connectionOf(leaving));
      await store.subscribe(topic, connectionOf(staying));
    }
    await store.subscribe(otherTopic, connectionOf(staying));

    // Act
    await store.removeConnection(leaving);

    // Assess
    expect(await store.subscribers(jobTopic)).toEqual([staying]);
    expect(await store.subscribers(batchTopic)).toEqual([staying]);
    expect(await store.subscribers(otherTopic)).toEqual([staying]);
  });

  it("removes a connection with more topics than one BatchWrite takes", async () => {
    // Prepare
    const store = await makeStore();
    const connection = newConnection("busy");
    const topics = Array.from({ length: 30 }, () => newTopic());
    await Promise.all(topics.map((t) => store.subscribe(t, connectionOf(connection))));

    // Act
    await store.removeConnection(connection);

    // Assess
    const left = await Promise.all(topics.map((t) => store.subscribers(t)));
    expect(left.flat()).toEqual([]);
  });

  it("removes a connection that follows nothing without complaint", async () => {
    const store = await makeStore();
    await expect(store.removeConnection(newConnection("idle"))).resolves.toBeUndefined();
  });
}

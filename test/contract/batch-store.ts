import { expect, it } from "vitest";
import type { BatchRecord } from "#shared/core/batches";
import { ConflictError, ValidationError } from "#shared/core/errors";
import type { BatchStore, Page } from "#shared/ports";
import { changeTo, SWEEP_SHARD } from "#shared/core/openai-batches";
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

  it("reads a record from before OpenAI batches as a JSON-lines batch: no kind, no status", async () => {
    const store = await makeStore();
    const old = batch(newTenant(), 1);
    await store.create(old);
    const read = await store.get(old.batch_id);
    expect(read).toEqual(old);
    expect(read).not.toHaveProperty("kind");
  });

  it("moves an OpenAI batch forward only from the statuses given, stamping each; the same change by another caller, even in the same second, loses", async () => {
    // Prepare
    const store = await makeStore();
    const created = openAIBatch(newTenant(), 1);
    await store.create(created);

    // Act
    const running = await store.transition(created.batch_id, ["validating"], changeTo(created, "in_progress", 100, { total: 2, models: ["llama-2-7b"] }));
    const again = await store.transition(created.batch_id, ["validating"], changeTo(created, "in_progress", 100, { total: 2 }));
    const late = await store.transition(created.batch_id, ["validating"], changeTo(created, "failed", 101));
    const jsonl = batch(newTenant(), 2);
    await store.create(jsonl);
    const notOpenAI = await store.transition(jsonl.batch_id, ["validating"], changeTo(jsonl, "in_progress", 100));

    // Assess
    expect(running).toMatchObject({ status: "in_progress", in_progress_at: 100, total: 2, models: ["llama-2-7b"], sweep: SWEEP_SHARD, sweep_at: created.window_expires_at });
    expect(again).toBeUndefined();
    expect(late).toBeUndefined();
    expect(notOpenAI).toBeUndefined();
    expect(await store.get(created.batch_id)).toEqual(running);
  });

  it("writes a terminal status with its files and counts and takes the batch out of the sweep's index", async () => {
    const store = await makeStore();
    const created = openAIBatch(newTenant(), 1);
    await store.create(created);
    const finalizing = await store.transition(created.batch_id, ["validating"], changeTo(created, "finalizing", 200, { outcome: "completed" }));
    const counts = { total: 1, queued: 0, running: 0, succeeded: 1, failed: 0, cancelled: 0, expired: 0 };
    const done = await store.transition(created.batch_id, ["finalizing"], changeTo(created, "completed", 300, { output_file_id: "file-1", error_file_id: null, request_counts: counts }));
    expect(finalizing).toMatchObject({ outcome: "completed", sweep_at: 500 });
    expect(done).toMatchObject({ status: "completed", completed_at: 300, finalizing_at: 200, output_file_id: "file-1", error_file_id: null, request_counts: counts });
    expect(done).not.toHaveProperty("sweep");
    expect(done).not.toHaveProperty("sweep_at");
  });

  it("lists the open batches due for the sweep, soonest first, and none that is not due or not open", async () => {
    // Prepare
    const store = await makeStore();
    const tenant = newTenant();
    // Far in the past, so that other tests' batches in the same table are not due before these.
    const at = (n: number) => 1000 + n;
    const [dueLater, dueFirst, notDue, closed] = [openAIBatch(tenant, 1, at(2)), openAIBatch(tenant, 2, at(1)), openAIBatch(tenant, 3, 4_000_000_000), openAIBatch(tenant, 4, at(0))];
    for (const b of [dueLater, dueFirst, notDue, closed]) await store.create(b);
    await store.transition(closed.batch_id, ["validating"], changeTo(closed, "failed", 5));

    // Act
    const due = (await store.listDue(at(2), 100)).filter((b) => b.tenant === tenant);

    // Assess
    expect(due.map((b) => b.batch_id)).toEqual([dueFirst.batch_id, dueLater.batch_id]);
  });

  it("lists a JSON-lines batch due while its jobs are not marked queued, and no more once they are; marking leaves an OpenAI batch's sweep as it was", async () => {
    // Prepare: far in the past, as above
    const store = await makeStore();
    const tenant = newTenant();
    const unqueued = { ...batch(tenant, 1), sweep: SWEEP_SHARD, sweep_at: 1003 };
    const queued = { ...batch(tenant, 2), sweep: SWEEP_SHARD, sweep_at: 1003 };
    const openAI = openAIBatch(tenant, 3, 1003);
    for (const b of [unqueued, queued, openAI]) await store.create(b);

    // Act
    await store.markQueued(queued.batch_id);
    await store.markQueued(queued.batch_id);
    await store.markQueued(openAI.batch_id);
    await store.markQueued(`batch_${uniqueSuffix()}`);
    const due = (await store.listDue(1003, 100)).filter((b) => b.tenant === tenant);

    // Assess
    expect(due.map((b) => b.batch_id).toSorted()).toEqual([unqueued.batch_id, openAI.batch_id].toSorted());
    const { sweep: _sweep, sweep_at: _sweepAt, ...unswept } = queued;
    const stored = await store.get(queued.batch_id);
    expect(stored).toEqual(unswept);
    expect(stored).not.toHaveProperty("sweep");
    expect(stored).not.toHaveProperty("sweep_at");
  });

  it("lists a tenant's batches after a batch id, as OpenAI's `after`, and refuses an id not the tenant's", async () => {
    const store = await makeStore();
    const tenant = newTenant();
    const made = [1, 2, 3].map((n) => batch(tenant, n));
    for (const b of made) await store.create(b);
    const page = await store.listByTenant(tenant, { limit: 5, after: made[2]?.batch_id });
    expect(totals(page)).toEqual([2, 1]);
    await expect(store.listByTenant(newTenant(), { limit: 5, after: made[0]?.batch_id })).rejects.toMatchObject({ field: "after" });
  });
}

/** An OpenAI batch, validating, due for the sweep at `sweepAt` (its window's end). */
function openAIBatch(tenant: string, n: number, sweepAt = 1_795_867_200): BatchRecord {
  return {
    ...batch(tenant, n),
    total: 0,
    models: [],
    kind: "openai",
    endpoint: "/v1/chat/completions",
    input_file_id: "file-1",
    completion_window: "24h",
    status: "validating",
    window_expires_at: sweepAt,
    sweep: SWEEP_SHARD,
    sweep_at: sweepAt,
  };
}

import { expect, it } from "vitest";
import type { FileRecord, FileStore, UploadStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const fileId = (n: number) => `file-${uniqueSuffix()}${String(n).padStart(24, "0")}`;
function file(tenant: string, n: number, over: Partial<FileRecord> = {}): FileRecord {
  const id = fileId(n);
  return { file_id: id, tenant, filename: `f${n}.jsonl`, purpose: "batch", bytes: 10 + n, created_at: 1_800_000_000 + n, storage_key: `files/${id}`, ...over };
}
const ids = (page: { items: readonly FileRecord[] }) => page.items.map((f) => f.file_id);

/** What every FileStore must do, in memory and on DynamoDB alike. */
export function fileStoreContract(makeStore: () => Promise<FileStore>): void {
  it("gives back a file as it was created, expiry included, and nothing for an id never created", async () => {
    const store = await makeStore();
    const one = file("acme", 1);
    const expiring = file("acme", 2, { purpose: "batch_output", expires_at: 1_900_000_000 });
    await store.create(one);
    await store.create(expiring);
    expect(await store.get(one.file_id)).toEqual(one);
    expect(await store.get(expiring.file_id)).toEqual(expiring);
    expect(await store.get(fileId(3))).toBeUndefined();
  });

  it("lists a tenant's files newest first, or oldest first, a page at a time after the last id, saying whether more follow", async () => {
    const store = await makeStore();
    const files = [1, 2, 3, 4, 5].map((n) => file("acme", n));
    for (const f of files) await store.create(f);
    await store.create(file("globex", 9));
    const first = await store.listByTenant("acme", { limit: 2 });
    expect(ids(first)).toEqual([files[4]!.file_id, files[3]!.file_id]);
    expect(first.hasMore).toBe(true);
    const last = await store.listByTenant("acme", { limit: 3, after: files[3]!.file_id });
    expect(ids(last)).toEqual([files[2]!.file_id, files[1]!.file_id, files[0]!.file_id]);
    expect(last.hasMore).toBe(false);
    const asc = await store.listByTenant("acme", { limit: 10, order: "asc" });
    expect(ids(asc)).toEqual(files.map((f) => f.file_id));
    expect(asc.hasMore).toBe(false);
    const foreign = file("globex", 8);
    await store.create(foreign);
    expect(await store.listByTenant("acme", { limit: 10, after: foreign.file_id })).toEqual({ items: [], hasMore: false });
  });

  it("filters by purpose without losing a page's worth: limit counts the files that match", async () => {
    const store = await makeStore();
    const files = [1, 2, 3, 4, 5, 6].map((n) => file("acme", n, { purpose: n % 3 === 0 ? "batch_output" : "batch" }));
    for (const f of files) await store.create(f);
    const outputs = await store.listByTenant("acme", { limit: 1, purpose: "batch_output" });
    expect(ids(outputs)).toEqual([files[5]!.file_id]);
    expect(outputs.hasMore).toBe(true);
    const rest = await store.listByTenant("acme", { limit: 5, purpose: "batch_output", after: files[5]!.file_id });
    expect(ids(rest)).toEqual([files[2]!.file_id]);
    expect(rest.hasMore).toBe(false);
  });

  it("deletes a file: gone from get and from the list; deleting again is no error", async () => {
    const store = await makeStore();
    const one = file("acme", 1);
    await store.create(one);
    await store.delete(one.file_id);
    await store.delete(one.file_id);
    expect(await store.get(one.file_id)).toBeUndefined();
    expect(ids(await store.listByTenant("acme", { limit: 10 }))).toEqual([]);
  });
}

/** What every UploadStore must do; `files` is the FileStore over the same table, which must never see an upload. */
export function uploadStoreContract(make: () => Promise<{ uploads: UploadStore; files: FileStore }>): void {
  it("keeps a pending upload, marks it completed, and never shows it as a file", async () => {
    const { uploads, files } = await make();
    const id = `upload_${uniqueSuffix()}${"0".repeat(24)}`;
    const target = fileId(1);
    const upload = {
      upload_id: id, tenant: "acme", filename: "big.jsonl", purpose: "batch" as const, bytes: 7_000_000, mime_type: "application/jsonl",
      created_at: 1_800_000_000, expires_at: 1_800_003_600, storage_key: `files/${target}`, status: "pending" as const, file_id: target,
    };
    await uploads.create(upload);
    expect(await uploads.get(id)).toEqual(upload);
    expect(await files.get(id)).toBeUndefined();
    expect(ids(await files.listByTenant("acme", { limit: 10 }))).toEqual([]);
    await uploads.complete(id);
    await uploads.complete(id);
    expect(await uploads.get(id)).toEqual({ ...upload, status: "completed" });
    expect(await uploads.get(`upload_${"f".repeat(32)}`)).toBeUndefined();
  });

  it("does not bring back an upload that is gone by completing it", async () => {
    const { uploads } = await make();
    const id = `upload_${uniqueSuffix()}${"1".repeat(24)}`;
    await uploads.complete(id);
    expect(await uploads.get(id)).toBeUndefined();
  });
}

import { expect, it } from "vitest";
import type { BlobStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

export type BlobStoreUnderTest = {
  readonly store: BlobStore;
  /** PUTs `body` to a URL from presignPut, as a client would. */
  putThroughUrl(url: string, body: Uint8Array): Promise<void>;
};

/** What every BlobStore must do, in memory and on S3 (fauxqs) alike. */
export function blobStoreContract(make: () => Promise<BlobStoreUnderTest>): void {
  const key = () => `files/file-${uniqueSuffix()}`;

  it("gives back the bytes put, text or binary, with their size; nothing for a key never put", async () => {
    const { store } = await make();
    const [text, binary, missing] = [key(), key(), key()];
    await store.put(text, '{"a":"é"}\n', "application/jsonl");
    await store.put(binary, new Uint8Array([0, 255, 10]), "application/octet-stream");
    expect(Buffer.from((await store.get(text))!).toString("utf8")).toBe('{"a":"é"}\n');
    expect(await store.size(text)).toBe(Buffer.byteLength('{"a":"é"}\n'));
    expect([...(await store.get(binary))!]).toEqual([0, 255, 10]);
    expect(await store.get(missing)).toBeUndefined();
    expect(await store.size(missing)).toBeUndefined();
  });

  it("deletes an object; deleting one that is not there is no error", async () => {
    const { store } = await make();
    const k = key();
    await store.put(k, "x", "application/jsonl");
    await store.delete(k);
    await store.delete(k);
    expect(await store.get(k)).toBeUndefined();
  });

  it("takes bytes PUT to a presigned URL under its key", async () => {
    const { store, putThroughUrl } = await make();
    const k = key();
    const body = new Uint8Array(Buffer.from("line\n".repeat(1000)));
    await putThroughUrl(await store.presignPut(k, 3600, "application/jsonl"), body);
    expect(await store.size(k)).toBe(body.byteLength);
    expect(Buffer.from((await store.get(k))!).equals(Buffer.from(body))).toBe(true);
  });
}

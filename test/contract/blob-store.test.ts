import { describe } from "vitest";
import { S3BlobStore } from "#shared/aws/s3-blob-store";
import { MemoryBlobs } from "../helpers/memory-files.ts";
import { blobStoreContract } from "./blob-store.ts";
import { fauxqsBuckets } from "./fixtures.ts";

describe("BlobStore contract", () => {
  describe("memory", () => {
    blobStoreContract(async () => {
      const store = new MemoryBlobs();
      // A memory URL names its key: putting there is what a PUT to S3's would do.
      const putThroughUrl = async (url: string, body: Uint8Array) => store.put(decodeURIComponent(new URL(url).pathname.slice(1)), body, "application/jsonl");
      return { store, putThroughUrl };
    });
  });

  describe("s3 (fauxqs)", () => {
    const bucket = fauxqsBuckets();
    blobStoreContract(async () => {
      const store = new S3BlobStore(await bucket());
      const putThroughUrl = async (url: string, body: Uint8Array) => {
        const answer = await fetch(url, { method: "PUT", body });
        if (!answer.ok) throw new Error(`PUT ${url}: ${answer.status} ${await answer.text()}`);
      };
      return { store, putThroughUrl };
    });
  });
});

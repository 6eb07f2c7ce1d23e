import { describe } from "vitest";
import { DynamoDbFileStore, DynamoDbUploadStore } from "#shared/aws/dynamodb-files";
import { MemoryFiles, MemoryUploads } from "../helpers/memory-files.ts";
import { fileStoreContract, uploadStoreContract } from "./file-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("FileStore and UploadStore contract", () => {
  describe("memory", () => {
    fileStoreContract(async () => new MemoryFiles());
    uploadStoreContract(async () => ({ uploads: new MemoryUploads(), files: new MemoryFiles() }));
  });

  describe("dynamodb", () => {
    const table = dynaliteTables();
    fileStoreContract(async () => new DynamoDbFileStore(await table("FilesTable")));
    uploadStoreContract(async () => {
      const options = await table("FilesTable");
      return { uploads: new DynamoDbUploadStore(options), files: new DynamoDbFileStore(options) };
    });
  });
});

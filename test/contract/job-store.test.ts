import { describe } from "vitest";
import { DynamoDbJobStore } from "#shared/aws/dynamodb-job-store";
import { MemoryJobStore } from "../helpers/fakes.ts";
import { dynaliteTables } from "./fixtures.ts";
import { jobStoreContract } from "./job-store.ts";

describe("JobStore contract", () => {
  describe("memory", () => jobStoreContract(async () => new MemoryJobStore()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    jobStoreContract(async () => new DynamoDbJobStore(await table("JobsTable")));
  });
});

import { describe } from "vitest";
import { DynamoDbFinishedJobs } from "#shared/aws/dynamodb-finished-jobs";
import { DynamoDbJobStore } from "#shared/aws/dynamodb-job-store";
import { MemoryJobStore } from "../helpers/fakes.ts";
import { MemoryFinishedJobs } from "../helpers/memory-finished-jobs.ts";
import { finishedJobIndexContract } from "./finished-job-index.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("FinishedJobIndex contract", () => {
  describe("memory", () =>
    finishedJobIndexContract(async () => {
      const store = new MemoryJobStore();
      return { store, index: new MemoryFinishedJobs(store) };
    }));

  describe("dynamodb (route-finished-index)", () => {
    const table = dynaliteTables();
    finishedJobIndexContract(async () => {
      const options = await table("JobsTable");
      return { store: new DynamoDbJobStore(options), index: new DynamoDbFinishedJobs(options) };
    });
  });
});

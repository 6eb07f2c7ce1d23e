import { describe } from "vitest";
import { MemoryQueue } from "../helpers/fakes.ts";
import { fauxqsQueues } from "./fixtures.ts";
import { jobQueueContract } from "./job-queue.ts";

describe("JobQueue contract", () => {
  describe("memory", () => jobQueueContract(async () => ({ queue: new MemoryQueue(), routes: ["llama-2-7b", "llama-3-8b"] })));

  describe("sqs", () => jobQueueContract(fauxqsQueues()));
});

import { describe } from "vitest";
import { DynamoDbQueueBoardStore } from "#shared/aws/dynamodb-queue-board";
import { MemoryQueueBoard } from "../helpers/memory-queue-board.ts";
import { queueBoardStoreContract } from "./queue-board-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("QueueBoardStore contract", () => {
  describe("memory", () => queueBoardStoreContract(async () => new MemoryQueueBoard()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    queueBoardStoreContract(async () => new DynamoDbQueueBoardStore(await table("QueueBoardTable")));
  });
});

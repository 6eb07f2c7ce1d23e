import { describe } from "vitest";
import { DynamoDbUsageMeter } from "#shared/aws/dynamodb-usage";
import { MemoryUsage } from "../helpers/fakes.ts";
import { usageMeterContract } from "./usage-meter.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("UsageMeter contract", () => {
  describe("memory", () => usageMeterContract(async () => new MemoryUsage()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    usageMeterContract(async () => new DynamoDbUsageMeter(await table("UsageTable")));
  });
});

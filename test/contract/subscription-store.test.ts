import { describe } from "vitest";
import { DynamoDbSubscriptionStore } from "#shared/aws/dynamodb-subscriptions";
import { MemorySubscriptions } from "../helpers/fakes.ts";
import { subscriptionStoreContract } from "./subscription-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("SubscriptionStore contract", () => {
  describe("memory", () => subscriptionStoreContract(async () => new MemorySubscriptions()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    subscriptionStoreContract(async () => new DynamoDbSubscriptionStore(await table("SubscriptionsTable")));
  });
});

import { describe } from "vitest";
import { DynamoDbWebhookEndpointStore } from "#shared/aws/dynamodb-webhook-endpoints";
import { MemoryWebhookEndpoints } from "../helpers/memory-webhooks.ts";
import { dynaliteTables } from "./fixtures.ts";
import { webhookEndpointStoreContract } from "./webhook-endpoint-store.ts";

describe("WebhookEndpointStore contract", () => {
  describe("memory", () => webhookEndpointStoreContract(async () => new MemoryWebhookEndpoints()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    webhookEndpointStoreContract(async () => new DynamoDbWebhookEndpointStore(await table("WebhookEndpointsTable")));
  });
});

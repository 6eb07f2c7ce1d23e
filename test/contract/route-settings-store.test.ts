import { describe } from "vitest";
import { DynamoDbRouteSettingsStore } from "#shared/aws/dynamodb-route-settings";
import { MemoryRouteSettings } from "../helpers/fakes.ts";
import { routeSettingsStoreContract } from "./route-settings-store.ts";
import { dynaliteTables } from "./fixtures.ts";

describe("RouteSettingsStore contract", () => {
  describe("memory", () => routeSettingsStoreContract(async () => new MemoryRouteSettings()));

  describe("dynamodb", () => {
    const table = dynaliteTables();
    routeSettingsStoreContract(async () => new DynamoDbRouteSettingsStore(await table("RouteSettingsTable")));
  });
});

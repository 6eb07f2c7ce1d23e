import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { routeSettingsSchema, type RouteSettings } from "../core/route-settings.ts";
import type { RouteSettingsStore } from "../ports.ts";
import { DynamoDbTable, sdk } from "./dynamodb-table.ts";

/**
 * Settings stored before a knob existed lack it (the route's default applies, effectiveRouteSettings),
 * and a knob since removed is dropped; each knob stored must still be valid.
 */
const settingsItem = z.object({ settings: z.object(routeSettingsSchema.shape).partial() });

export class DynamoDbRouteSettingsStore extends DynamoDbTable implements RouteSettingsStore {
  async get(route: string): Promise<Partial<RouteSettings> | undefined> {
    const out = await sdk(`get settings of ${route}`, () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { route }, ConsistentRead: true })),
    );
    return out.Item && this.decode(settingsItem, out.Item, `settings of route ${route}`).settings;
  }

  async put(route: string, settings: RouteSettings, updatedAt: Date): Promise<void> {
    await sdk(`put settings of ${route}`, () =>
      this.client.send(new PutCommand({ TableName: this.tableName, Item: { route, settings, updated_at: updatedAt.toISOString() } })),
    );
  }
}

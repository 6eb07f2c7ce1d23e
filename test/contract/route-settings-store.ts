import { expect, it } from "vitest";
import type { RouteSettings } from "#shared/core/route-settings";
import type { RouteSettingsStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const settings: RouteSettings = { dispatch: "adaptive", top_up: true, max_in_flight_per_copy: 64, max_wait_ms: 500, latency_objective_ms: 30_000, warming_recheck_seconds: 30, max_warming_wait_seconds: 600, batch_lane_floor_percent: 10, interactive_slowdown_percent: 25, measured_hold: false };
const newRoute = () => `route-${uniqueSuffix()}`;
const updatedAt = new Date("2026-11-27T12:00:00.000Z");

export function routeSettingsStoreContract(makeStore: () => Promise<RouteSettingsStore>): void {
  it("gives nothing for a route whose settings were never stored", async () => {
    const store = await makeStore();
    expect(await store.get(newRoute())).toBeUndefined();
  });

  it("gives back the settings stored for a route, and only for that route", async () => {
    // Prepare
    const store = await makeStore();
    const [route, other] = [newRoute(), newRoute()];

    // Act
    await store.put(route, settings, updatedAt);

    // Assess
    expect(await store.get(route)).toEqual(settings);
    expect(await store.get(other)).toBeUndefined();
  });

  it("replaces a route's settings stored again", async () => {
    // Prepare
    const store = await makeStore();
    const route = newRoute();
    await store.put(route, settings, updatedAt);
    const changed: RouteSettings = { ...settings, dispatch: "immediate", top_up: false, warming_recheck_seconds: 5 };

    // Act
    await store.put(route, changed, new Date(updatedAt.getTime() + 1000));

    // Assess
    expect(await store.get(route)).toEqual(changed);
  });
}

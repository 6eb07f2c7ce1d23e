import type { Principal } from "../core/api-keys.ts";
import { ForbiddenError, NotFoundError } from "../core/errors.ts";
import { checkRouteSettings, defaultRouteSettings, effectiveRouteSettings, type RouteSettings } from "../core/route-settings.ts";
import type { Route, RouteCatalog } from "../core/routes.ts";
import type { Clock, RouteSettingsStore } from "../ports.ts";

export type RouteSettingsDeps = { readonly catalog: RouteCatalog; readonly routeSettings: RouteSettingsStore; readonly clock: Clock };

export type RouteSettingsView = { readonly model: string; readonly settings: RouteSettings; readonly source: "default" | "stored" };

function routeOf(catalog: RouteCatalog, model: string): Route {
  const route = catalog.routes.get(model);
  if (!route) throw new NotFoundError(`model ${model} not found; known models: ${[...catalog.routes.keys()].join(", ")}`);
  return route;
}

/** The batcher's live knobs for a route: what ops stored, or the defaults. */
export async function getRouteSettings(deps: RouteSettingsDeps, model: string): Promise<RouteSettingsView> {
  const route = routeOf(deps.catalog, model);
  const stored = await deps.routeSettings.get(model);
  return stored ? { model, settings: effectiveRouteSettings(route, stored), source: "stored" } : { model, settings: defaultRouteSettings(route), source: "default" };
}

/**
 * Changes some of a route's knobs, checked against the route's limits; batchers pick the change up
 * with their next delivery. Only ops (admin) keys may.
 */
export async function updateRouteSettings(deps: RouteSettingsDeps, principal: Principal, model: string, patch: unknown): Promise<RouteSettingsView> {
  if (principal.role !== "admin") throw new ForbiddenError("changing route settings needs an admin API key");
  const route = routeOf(deps.catalog, model);
  const current = await getRouteSettings(deps, model);
  const settings = checkRouteSettings(route, current.settings, patch);
  await deps.routeSettings.put(model, settings, deps.clock.now());
  return { model, settings, source: "stored" };
}

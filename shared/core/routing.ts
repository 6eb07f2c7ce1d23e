import type { Component, Route } from "./routes.ts";

/**
 * Picks the component of a route with the least outstanding work per copy. Components with no
 * copies are skipped while any other has one; a route whose components all have none still gets
 * one, so the endpoint answers with its own "not ready" error and the job waits in SQS.
 */
export function pickComponent(route: Route, outstanding: ReadonlyMap<string, number>): Component {
  const candidates = route.components.some((c) => c.copies > 0) ? route.components.filter((c) => c.copies > 0) : route.components;
  let best = candidates[0];
  let bestLoad = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const load = (outstanding.get(c.name) ?? 0) / Math.max(1, c.copies);
    if (load < bestLoad) {
      best = c;
      bestLoad = load;
    }
  }
  if (!best) throw new Error(`route ${route.name} has no components`);
  return best;
}

import type { Principal } from "../core/api-keys.ts";
import { profileDriftMetrics, storedDriftMetrics } from "../core/drift-metrics.ts";
import { ForbiddenError } from "../core/errors.ts";
import { LANES, type Lane } from "../core/lanes.ts";
import {
  catalogComponents, componentMetrics, finishedJobsSummary, METRICS_MAX_JOBS, METRICS_WINDOW_SECONDS, routeMetrics,
  type LaneReading, type MetricsSnapshot, type MetricsSourceKind,
} from "../core/metrics.ts";
import type { RouteCatalog } from "../core/routes.ts";
import type { CapacityLedger, Clock, EngineMetrics, FinishedJobIndex, QueueMetrics } from "../ports.ts";

export type MetricsDeps = {
  readonly catalog: RouteCatalog;
  readonly clock: Clock;
  readonly queueMetrics: QueueMetrics;
  readonly engineMetrics: EngineMetrics;
  readonly finishedJobs: FinishedJobIndex;
  readonly metricsSource: MetricsSourceKind;
  /** Where the batchers store each component's drift from its profile: one GetItem a component a read. */
  readonly ledger: Pick<CapacityLedger, "drift">;
  /** The SQS queue of a route's lane (shared/config.ts). */
  queueName(route: string, lane?: Lane): string;
};

/** Each lane queue's dead-letter queue, as infra/serverless-routes.cjs names it. */
export const deadLetterQueueName = (queue: string) => `${queue}-dlq`;

async function laneReading(deps: MetricsDeps, route: string, lane: Lane, now: Date): Promise<LaneReading> {
  const queue = deps.queueName(route, lane);
  const deadLetterQueue = deadLetterQueueName(queue);
  const [depth, deadLetterDepth] = await Promise.all([deps.queueMetrics.depth(queue), deps.queueMetrics.depth(deadLetterQueue)]);
  // An empty queue has no oldest message: CloudWatch's last datapoint may still show one from a
  // minute ago, and fauxqs' inspection is the costly read (it lists every message).
  const empty = depth.visible + depth.inFlight + depth.delayed === 0;
  const oldestMessageAgeSeconds = empty ? undefined : await deps.queueMetrics.oldestMessageAgeSeconds(queue, now);
  return { lane, queue, depth, oldestMessageAgeSeconds, deadLetterQueue, deadLetterDepth };
}

/**
 * Every route's and component's numbers now (docs/metrics.md); finished jobs over the last
 * METRICS_WINDOW_SECONDS, at most METRICS_MAX_JOBS per route. Only ops (admin) keys may read them.
 */
export async function readMetrics(deps: MetricsDeps, principal: Principal): Promise<MetricsSnapshot> {
  if (principal.role !== "admin") throw new ForbiddenError("reading metrics needs an admin API key");
  const now = deps.clock.now();
  const windowMs = METRICS_WINDOW_SECONDS * 1000;
  const since = new Date(now.getTime() - windowMs);
  const components = await Promise.all(
    catalogComponents(deps.catalog).map(async (c) => {
      const [reading, drift] = await Promise.all([deps.engineMetrics.read(c, now, windowMs), deps.ledger.drift(c.name, now)]);
      return componentMetrics(c, reading, storedDriftMetrics(c.name, drift));
    }),
  );
  const routes = await Promise.all(
    [...deps.catalog.routes.values()].map(async (route) => {
      const [lanes, finished] = await Promise.all([
        Promise.all(LANES.map((lane) => laneReading(deps, route.name, lane, now))),
        deps.finishedJobs.finishedSince(route.name, since, METRICS_MAX_JOBS),
      ]);
      const stored = components.find((c) => c.component === route.components[0]?.name)?.profile_drift ?? null;
      return routeMetrics(route, lanes, finishedJobsSummary(finished.jobs, METRICS_WINDOW_SECONDS, finished.truncated), components, profileDriftMetrics(finished.jobs, route.components) ?? stored);
    }),
  );
  return { generated_at: now.toISOString(), source: deps.metricsSource, window_seconds: METRICS_WINDOW_SECONDS, routes, components };
}

/** q of a media type in an Accept header: its own entry, else its type's `type/*`, else `*\/*`; 0 when none matches. */
function quality(accept: string, type: string): number {
  let best: { specificity: number; q: number } = { specificity: -1, q: 0 };
  for (const entry of accept.split(",")) {
    const [range = "", ...params] = entry.trim().toLowerCase().split(";").map((p) => p.trim());
    const specificity = range === type ? 2 : range === `${type.split("/")[0]}/*` ? 1 : range === "*/*" ? 0 : -1;
    if (specificity <= best.specificity) continue;
    const q = params.find((p) => p.startsWith("q="));
    best = { specificity, q: q === undefined ? 1 : Number(q.slice(2)) || 0 };
  }
  return best.q;
}

/**
 * Whether a request's Accept asks for Prometheus text rather than JSON: text/plain ranks above
 * application/json (a Prometheus scraper's Accept does); a tie, or no Accept, is JSON.
 */
export function prefersPrometheusText(accept: string | undefined): boolean {
  if (!accept) return false;
  return quality(accept, "text/plain") > quality(accept, "application/json");
}

import type { ProfileDriftMetrics } from "./drift-metrics.ts";
import type { JobRecord } from "./jobs.ts";
import { LANES, type Lane } from "./lanes.ts";
import { gpuHourPrice, type Component, type RouteCatalog } from "./routes.ts";
import { costPerMillionTokens, percentile } from "./stats.ts";

/**
 * The ops view of GET /v1/metrics (docs/metrics.md): per route its lanes' queues, the latencies,
 * tokens, errors and cost of its recently finished jobs, and per inference component its copies
 * and their load. Pure: the adapters read queues, engines and the jobs index, this puts the
 * readings together, so the arithmetic is tested on its own and both stacks answer alike.
 */

/** Finished jobs are read over this window: the latencies, tokens/s, errors and cost describe it. */
export const METRICS_WINDOW_SECONDS = 300;
/** At most this many finished jobs of a route are read per request (newest first): the read stays bounded. */
export const METRICS_MAX_JOBS = 2000;

export type MetricsSourceKind = "cloudwatch" | "embedded";

/** Messages of one queue now (GetQueueAttributes). */
export type QueueDepth = { readonly visible: number; readonly inFlight: number; readonly delayed: number };

/** A copy as its source sees it; a figure it cannot measure is left out. */
export type CopyState = "warming" | "serving" | "draining";
export type CopyReading = {
  readonly copy: string;
  readonly state: CopyState;
  readonly runningSequences?: number | undefined;
  readonly kvTokens?: number | undefined;
  readonly gpuBusyFraction?: number | undefined;
  readonly generatedTokensPerSecond?: number | undefined;
};

/** An inference component as its source sees it: its copies by state, its load, and each copy where the source knows them. */
export type ComponentReading = {
  readonly copies: Readonly<Record<CopyState, number>>;
  readonly runningSequences?: number | undefined;
  readonly kvTokens?: number | undefined;
  readonly gpuBusyFraction?: number | undefined;
  readonly perCopy: readonly CopyReading[];
};

export type LaneReading = {
  readonly lane: Lane;
  readonly queue: string;
  readonly depth: QueueDepth;
  readonly oldestMessageAgeSeconds: number | undefined;
  readonly deadLetterQueue: string;
  readonly deadLetterDepth: QueueDepth;
};

/** What the metrics read of a finished job (the jobs table's route-finished-index projects these). */
/** What the metrics read of a finished job: its times, its breakdown (tokens, first claim), never its result. */
export type FinishedJob = Pick<JobRecord, "job_id" | "status" | "created_at" | "started_at" | "finished_at" | "breakdown" | "error" | "lane" | "component">;

export type Percentiles = { readonly p50: number; readonly p95: number; readonly p99: number };

// The JSON of GET /v1/metrics: snake_case, as the API's other bodies; null where a figure is unknown.

export type LaneMetrics = {
  readonly lane: Lane;
  readonly queue: string;
  readonly depth: { readonly visible: number; readonly in_flight: number; readonly delayed: number };
  readonly oldest_message_age_seconds: number | null;
  readonly dead_letter: { readonly queue: string; readonly depth: number };
};

export type RouteMetrics = {
  readonly route: string;
  readonly components: readonly string[];
  readonly lanes: readonly LaneMetrics[];
  readonly jobs: { readonly finished: number; readonly succeeded: number; readonly truncated: boolean };
  readonly latency_ms: { readonly end_to_end: Percentiles | null; readonly queue_wait: Percentiles | null; readonly inference: Percentiles | null };
  readonly generated_tokens: number;
  readonly generated_tokens_per_second: number;
  readonly errors: { readonly total: number; readonly rate: number | null; readonly by_kind: Readonly<Record<string, number>> };
  readonly cost: { readonly dollars_per_hour: number; readonly per_million_tokens: number | null };
  /** Its GPU batches against the latency profile (drift-metrics.ts): a static engine's from its finished jobs, else its first component's stored drift; null before any. */
  readonly profile_drift: ProfileDriftMetrics | null;
};

export type CopyMetrics = {
  readonly copy: string;
  readonly state: CopyState;
  readonly running_sequences: number | null;
  readonly kv_tokens: number | null;
  readonly gpu_busy_fraction: number | null;
  readonly generated_tokens_per_second: number | null;
};

export type ComponentMetrics = {
  readonly component: string;
  readonly endpoint: string;
  readonly copies: { readonly serving: number; readonly warming: number; readonly draining: number; readonly max: number };
  readonly at_max_copies: boolean;
  readonly running_sequences: number | null;
  readonly max_sequences: number;
  readonly kv_tokens: number | null;
  readonly max_kv_tokens: number;
  readonly gpu_busy_fraction: number | null;
  readonly gpus_held: number;
  readonly dollars_per_hour: number;
  readonly per_copy: readonly CopyMetrics[];
  /** Its calls against its latency profile as the batchers stored it (drift-metrics.ts); null before any did. */
  readonly profile_drift: ProfileDriftMetrics | null;
};

export type MetricsSnapshot = {
  readonly generated_at: string;
  readonly source: MetricsSourceKind;
  readonly window_seconds: number;
  readonly routes: readonly RouteMetrics[];
  readonly components: readonly ComponentMetrics[];
};

const orNull = (value: number | undefined): number | null => (value === undefined || !Number.isFinite(value) ? null : value);

const percentiles = (values: readonly number[]): Percentiles | null =>
  values.length === 0 ? null : { p50: percentile(values, 0.5), p95: percentile(values, 0.95), p99: percentile(values, 0.99) };

const ms = (iso: string | undefined): number | undefined => (iso === undefined ? undefined : Date.parse(iso));

/** The most copies a component may run: its autoscaling's max, else its fixed count. */
export function maxCopies(component: Component): number {
  return component.autoscaling?.max_copies ?? component.copies;
}

export function componentMetrics(component: Component, reading: ComponentReading, profileDrift: ProfileDriftMetrics | null = null): ComponentMetrics {
  const { serving, warming, draining } = reading.copies;
  // Every copy placed is billed, warming and draining ones too.
  const gpusHeld = (serving + warming + draining) * component.accelerators_per_copy;
  const max = maxCopies(component);
  return {
    component: component.name,
    endpoint: component.endpointName,
    copies: { serving, warming, draining, max },
    at_max_copies: serving + warming >= max,
    running_sequences: orNull(reading.runningSequences),
    max_sequences: serving * component.limits.max_sequences,
    kv_tokens: orNull(reading.kvTokens),
    max_kv_tokens: serving * component.limits.token_budget,
    gpu_busy_fraction: orNull(reading.gpuBusyFraction),
    gpus_held: gpusHeld,
    dollars_per_hour: gpusHeld * gpuHourPrice(component),
    per_copy: reading.perCopy.map((c) => ({
      copy: c.copy,
      state: c.state,
      running_sequences: orNull(c.runningSequences),
      kv_tokens: orNull(c.kvTokens),
      gpu_busy_fraction: orNull(c.gpuBusyFraction),
      generated_tokens_per_second: orNull(c.generatedTokensPerSecond),
    })),
    profile_drift: profileDrift,
  };
}

/** Error kinds: what a job that ended badly failed of (its error code). A cancel is the caller's choice, not an error. */
function errorKind(job: FinishedJob): string | undefined {
  if (job.status !== "FAILED" && job.status !== "EXPIRED") return undefined;
  return job.error?.code ?? job.status.toLowerCase();
}

export type FinishedJobsSummary = Pick<RouteMetrics, "jobs" | "latency_ms" | "generated_tokens" | "generated_tokens_per_second" | "errors">;

/**
 * What a route's jobs finished within the window say: latency percentiles of the succeeded ones
 * (end to end = finished - created, split into queue wait = the first claim - created, from the
 * breakdown, and inference = the rest; a job without a breakdown splits at its last claim),
 * generated tokens per second over the window (the breakdowns' generated tokens), errors by kind.
 */
export function finishedJobsSummary(jobs: readonly FinishedJob[], windowSeconds: number, truncated: boolean): FinishedJobsSummary {
  const succeeded = jobs.filter((j) => j.status === "SUCCEEDED");
  const timed = succeeded.flatMap((j) => {
    const created = ms(j.created_at);
    const started = ms(j.started_at);
    const finished = ms(j.finished_at);
    if (created === undefined || started === undefined || finished === undefined) return [];
    // The breakdown's queue wait ends at the first claim; started_at is the last claim's.
    const queueWait = j.breakdown?.queue_wait_ms ?? started - created;
    return [{ created, finished, queueWait, inference: finished - created - queueWait }];
  });
  const byKind: Record<string, number> = {};
  for (const job of jobs) {
    const kind = errorKind(job);
    if (kind !== undefined) byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  const errors = Object.values(byKind).reduce((a, b) => a + b, 0);
  const tokens = succeeded.reduce((sum, j) => sum + (j.breakdown?.generated_tokens ?? 0), 0);
  return {
    jobs: { finished: jobs.length, succeeded: succeeded.length, truncated },
    latency_ms: {
      end_to_end: percentiles(timed.map((t) => t.finished - t.created)),
      queue_wait: percentiles(timed.map((t) => t.queueWait)),
      inference: percentiles(timed.map((t) => t.inference)),
    },
    generated_tokens: tokens,
    generated_tokens_per_second: tokens / windowSeconds,
    errors: { total: errors, rate: succeeded.length + errors === 0 ? null : errors / (succeeded.length + errors), by_kind: byKind },
  };
}

export function laneMetrics(reading: LaneReading): LaneMetrics {
  const { depth, deadLetterDepth } = reading;
  return {
    lane: reading.lane,
    queue: reading.queue,
    depth: { visible: depth.visible, in_flight: depth.inFlight, delayed: depth.delayed },
    oldest_message_age_seconds: orNull(reading.oldestMessageAgeSeconds),
    dead_letter: { queue: reading.deadLetterQueue, depth: deadLetterDepth.visible + deadLetterDepth.inFlight + deadLetterDepth.delayed },
  };
}

/**
 * A route's numbers. Its cost is what its components' copies cost an hour over the tokens it
 * generated: a component that serves several routes is counted whole in each.
 */
export function routeMetrics(
  route: { readonly name: string; readonly components: readonly Component[] },
  lanes: readonly LaneReading[],
  summary: FinishedJobsSummary,
  components: readonly ComponentMetrics[],
  profileDrift: ProfileDriftMetrics | null = null,
): RouteMetrics {
  const own = components.filter((c) => route.components.some((rc) => rc.name === c.component));
  const dollarsPerHour = own.reduce((sum, c) => sum + c.dollars_per_hour, 0);
  return {
    route: route.name,
    components: route.components.map((c) => c.name),
    lanes: [...lanes].sort((a, b) => LANES.indexOf(a.lane) - LANES.indexOf(b.lane)).map(laneMetrics),
    ...summary,
    cost: { dollars_per_hour: dollarsPerHour, per_million_tokens: orNull(costPerMillionTokens(dollarsPerHour, 1, summary.generated_tokens_per_second)) },
    profile_drift: profileDrift,
  };
}

/** Every component of the catalog, in the order routes.yml lists them. */
export function catalogComponents(catalog: RouteCatalog): readonly Component[] {
  return [...catalog.components.values()];
}

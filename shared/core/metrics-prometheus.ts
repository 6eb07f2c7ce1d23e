import { Gauge, Registry } from "prom-client";
import type { MetricsSnapshot } from "./metrics.ts";

/**
 * The snapshot in Prometheus' text exposition format (what GET /v1/metrics answers to
 * `Accept: text/plain`), through prom-client's registry: gauges with `# HELP` and `# TYPE`, labelled
 * by route, lane, component and copy. A figure the source cannot measure (null) has no sample.
 */

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

type Labels = Record<string, string>;
type Sample = readonly [labels: Labels, value: number | null];
type GaugeSpec = { readonly name: string; readonly help: string; readonly labels: readonly string[]; readonly samples: (s: MetricsSnapshot) => readonly Sample[] };

const QUANTILES = [["0.5", "p50"], ["0.95", "p95"], ["0.99", "p99"]] as const;
const PHASES = ["end_to_end", "queue_wait", "inference"] as const;

const perRoute = (s: MetricsSnapshot, value: (r: MetricsSnapshot["routes"][number]) => number | null): Sample[] => s.routes.map((r) => [{ route: r.route }, value(r)]);
const perLane = (s: MetricsSnapshot, value: (l: MetricsSnapshot["routes"][number]["lanes"][number]) => number | null): Sample[] =>
  s.routes.flatMap((r) => r.lanes.map((l): Sample => [{ route: r.route, lane: l.lane }, value(l)]));
const perComponent = (s: MetricsSnapshot, value: (c: MetricsSnapshot["components"][number]) => number | null): Sample[] => s.components.map((c) => [{ component: c.component }, value(c)]);
const perCopy = (s: MetricsSnapshot, value: (c: MetricsSnapshot["components"][number]["per_copy"][number]) => number | null): Sample[] =>
  s.components.flatMap((c) => c.per_copy.map((copy): Sample => [{ component: c.component, copy: copy.copy, state: copy.state }, value(copy)]));

const GAUGES: readonly GaugeSpec[] = [
  {
    name: "batchline_queue_messages",
    help: "Messages in a route lane's queue, by state (visible, in_flight, delayed)",
    labels: ["route", "lane", "state"],
    samples: (s) => s.routes.flatMap((r) => r.lanes.flatMap((l) => Object.entries(l.depth).map(([state, n]): Sample => [{ route: r.route, lane: l.lane, state }, n]))),
  },
  { name: "batchline_queue_oldest_message_age_seconds", help: "Age of the oldest message in a route lane's queue", labels: ["route", "lane"], samples: (s) => perLane(s, (l) => l.oldest_message_age_seconds) },
  { name: "batchline_dead_letter_messages", help: "Messages in a route lane's dead-letter queue", labels: ["route", "lane"], samples: (s) => perLane(s, (l) => l.dead_letter.depth) },
  {
    name: "batchline_job_latency_milliseconds",
    help: "Latency quantiles of the jobs that succeeded in the window, end to end and split into queue wait and inference",
    labels: ["route", "phase", "quantile"],
    samples: (s) => s.routes.flatMap((r) => PHASES.flatMap((phase) => QUANTILES.map(([quantile, key]): Sample => [{ route: r.route, phase, quantile }, r.latency_ms[phase]?.[key] ?? null]))),
  },
  { name: "batchline_jobs_finished", help: "Jobs of the route that finished in the window", labels: ["route"], samples: (s) => perRoute(s, (r) => r.jobs.finished) },
  { name: "batchline_generated_tokens_per_second", help: "Tokens the route's jobs generated per second over the window", labels: ["route"], samples: (s) => perRoute(s, (r) => r.generated_tokens_per_second) },
  {
    name: "batchline_job_errors",
    help: "Jobs of the route that failed or expired in the window, by kind (error code)",
    labels: ["route", "kind"],
    samples: (s) => s.routes.flatMap((r) => Object.entries(r.errors.by_kind).map(([kind, n]): Sample => [{ route: r.route, kind }, n])),
  },
  { name: "batchline_job_error_ratio", help: "Errors over finished jobs (succeeded or errored) of the route in the window", labels: ["route"], samples: (s) => perRoute(s, (r) => r.errors.rate) },
  { name: "batchline_cost_dollars_per_hour", help: "What the route's components' copies cost an hour", labels: ["route"], samples: (s) => perRoute(s, (r) => r.cost.dollars_per_hour) },
  {
    name: "batchline_profile_drift_ratio",
    help: "Median measured over predicted time of the route's recent GPU batches (1: as the latency profile says)",
    labels: ["route"],
    samples: (s) => perRoute(s, (r) => r.profile_drift?.ratio ?? null),
  },
  { name: "batchline_profile_correction_factor", help: "The factor the batcher's packing and ETAs multiply the profile's times by", labels: ["route"], samples: (s) => perRoute(s, (r) => r.profile_drift?.factor ?? null) },
  {
    name: "batchline_component_profile_correction_factor",
    help: "The factor the batchers multiply the component's decode-step or prefill times by (1: as the latency profile says)",
    labels: ["component", "part"],
    samples: (s) =>
      s.components.flatMap((c): Sample[] => (c.profile_drift ? [[{ component: c.component, part: "decode" }, c.profile_drift.factor], [{ component: c.component, part: "prefill" }, c.profile_drift.prefill?.factor ?? c.profile_drift.factor]] : [])),
  },
  { name: "batchline_cost_per_million_tokens_dollars", help: "Dollars per million generated tokens of the route over the window", labels: ["route"], samples: (s) => perRoute(s, (r) => r.cost.per_million_tokens) },
  {
    name: "batchline_copies",
    help: "Copies of an inference component, by state (warming, serving, draining)",
    labels: ["component", "state"],
    samples: (s) => s.components.flatMap((c) => (["warming", "serving", "draining"] as const).map((state): Sample => [{ component: c.component, state }, c.copies[state]])),
  },
  { name: "batchline_copies_max", help: "The most copies the component may run (autoscaling max_copies)", labels: ["component"], samples: (s) => perComponent(s, (c) => c.copies.max) },
  { name: "batchline_running_sequences", help: "Sequences running on the component's serving copies", labels: ["component"], samples: (s) => perComponent(s, (c) => c.running_sequences) },
  { name: "batchline_max_sequences", help: "Sequences the component's serving copies may run at once", labels: ["component"], samples: (s) => perComponent(s, (c) => c.max_sequences) },
  { name: "batchline_kv_tokens", help: "KV-cache tokens held on the component's serving copies", labels: ["component"], samples: (s) => perComponent(s, (c) => c.kv_tokens) },
  { name: "batchline_max_kv_tokens", help: "KV-cache tokens the component's serving copies hold at most", labels: ["component"], samples: (s) => perComponent(s, (c) => c.max_kv_tokens) },
  { name: "batchline_gpu_busy_ratio", help: "Share of the window the component's GPUs were busy", labels: ["component"], samples: (s) => perComponent(s, (c) => c.gpu_busy_fraction) },
  { name: "batchline_copy_running_sequences", help: "Sequences running on one copy", labels: ["component", "copy", "state"], samples: (s) => perCopy(s, (c) => c.running_sequences) },
  { name: "batchline_copy_kv_tokens", help: "KV-cache tokens held on one copy", labels: ["component", "copy", "state"], samples: (s) => perCopy(s, (c) => c.kv_tokens) },
  { name: "batchline_copy_gpu_busy_ratio", help: "Share of the window one copy's GPU was busy", labels: ["component", "copy", "state"], samples: (s) => perCopy(s, (c) => c.gpu_busy_fraction) },
  {
    name: "batchline_copy_generated_tokens_per_second",
    help: "Tokens one copy generated per second over the window",
    labels: ["component", "copy", "state"],
    samples: (s) => perCopy(s, (c) => c.generated_tokens_per_second),
  },
];

/** The snapshot as Prometheus text; a fresh registry each time, so no sample outlives its snapshot. */
export async function renderPrometheus(snapshot: MetricsSnapshot): Promise<string> {
  const registry = new Registry();
  for (const spec of GAUGES) {
    const gauge = new Gauge({ name: spec.name, help: spec.help, labelNames: spec.labels, registers: [registry] });
    for (const [labels, value] of spec.samples(snapshot)) if (value !== null) gauge.set(labels, value);
  }
  return registry.metrics();
}

/** Names of the gauges, for the docs' test. */
export const PROMETHEUS_GAUGES: readonly string[] = GAUGES.map((g) => g.name);

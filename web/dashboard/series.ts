import type { ComponentMetrics, MetricsSnapshot, RouteMetrics } from "../../shared/core/metrics.ts";

/**
 * What the dashboard draws, as plain data: the snapshots `GET /v1/metrics` answered, kept for a
 * while, and each chart's series read out of them. No DOM here, so it is tested under Node.
 */

/** One answer of `GET /v1/metrics`, and when the page received it. */
export type Sample = { readonly atMs: number; readonly snapshot: MetricsSnapshot };

/** How long the charts look back: the API's own window is 5 minutes, twice that shows a trend. */
export const HISTORY_MS = 10 * 60_000;

/** The samples of the last `keepMs`, the new one added (samples come in order). */
export function remember(history: readonly Sample[], sample: Sample, keepMs = HISTORY_MS): Sample[] {
  const from = sample.atMs - keepMs;
  return [...history.filter((s) => s.atMs >= from && s.atMs < sample.atMs), sample];
}

/** What one route's charts read: the route and the components that serve it. */
export type RouteView = { readonly route: RouteMetrics; readonly components: readonly ComponentMetrics[] };

export function routeView(snapshot: MetricsSnapshot, route: string): RouteView | undefined {
  const found = snapshot.routes.find((r) => r.route === route);
  if (!found) return undefined;
  return { route: found, components: snapshot.components.filter((c) => found.components.includes(c.component)) };
}

type Reading = (view: RouteView) => number | null | undefined;

export type SeriesSpec = { readonly label: string; readonly read: Reading };
export type ChartSpec = { readonly id: string; readonly title: string; readonly unit: string; readonly series: readonly SeriesSpec[] };

const lane = (view: RouteView, name: string) => view.route.lanes.find((l) => l.lane === name);
const sum = (view: RouteView, read: (c: ComponentMetrics) => number | null) => {
  const values = view.components.map(read);
  return values.some((v) => v === null) || values.length === 0 ? null : values.reduce<number>((a, v) => a + (v ?? 0), 0);
};
const share = (part: number | null, whole: number) => (part === null || whole <= 0 ? null : part / whole);
const seconds = (ms: number | undefined) => (ms === undefined ? null : ms / 1000);

/** The charts of a route, in the order the page shows them. */
export const CHARTS: readonly ChartSpec[] = [
  {
    id: "queue-depth",
    title: "Queue depth",
    unit: "messages",
    series: ["interactive", "batch"].flatMap((name) => [
      { label: `${name} waiting`, read: (v: RouteView) => lane(v, name)?.depth.visible },
      { label: `${name} in flight`, read: (v: RouteView) => lane(v, name)?.depth.in_flight },
    ]),
  },
  {
    id: "queue-age",
    title: "Oldest message age",
    unit: "s",
    series: ["interactive", "batch"].map((name) => ({ label: name, read: (v: RouteView) => lane(v, name)?.oldest_message_age_seconds ?? 0 })),
  },
  {
    id: "batch-fill",
    title: "Batch fill against the limits",
    unit: "share",
    series: [
      { label: "sequences / max", read: (v) => share(sum(v, (c) => c.running_sequences), v.components.reduce((a, c) => a + c.max_sequences, 0)) },
      { label: "KV tokens / max", read: (v) => share(sum(v, (c) => c.kv_tokens), v.components.reduce((a, c) => a + c.max_kv_tokens, 0)) },
    ],
  },
  {
    id: "gpu-busy",
    title: "GPU busy",
    unit: "share",
    series: [{ label: "busy", read: (v) => share(sum(v, (c) => c.gpu_busy_fraction), v.components.length) }],
  },
  {
    id: "latency",
    title: "Latency: queue wait and inference",
    unit: "s",
    series: [
      { label: "end to end p50", read: (v) => seconds(v.route.latency_ms.end_to_end?.p50) },
      { label: "end to end p95", read: (v) => seconds(v.route.latency_ms.end_to_end?.p95) },
      { label: "end to end p99", read: (v) => seconds(v.route.latency_ms.end_to_end?.p99) },
      { label: "queue wait p95", read: (v) => seconds(v.route.latency_ms.queue_wait?.p95) },
      { label: "inference p95", read: (v) => seconds(v.route.latency_ms.inference?.p95) },
    ],
  },
  { id: "tokens", title: "Generated tokens per second", unit: "tok/s", series: [{ label: "tokens/s", read: (v) => v.route.generated_tokens_per_second }] },
  { id: "cost", title: "Cost per million tokens", unit: "$", series: [{ label: "$ / 1M tokens", read: (v) => v.route.cost.per_million_tokens }] },
  {
    id: "errors",
    title: "Errors and dead letters",
    unit: "count",
    series: [
      { label: "job errors (5 min)", read: (v) => v.route.errors.total },
      ...["interactive", "batch"].map((name) => ({ label: `${name} DLQ`, read: (v: RouteView) => lane(v, name)?.dead_letter.depth })),
    ],
  },
  {
    id: "copies",
    title: "Copies",
    unit: "copies",
    series: [
      { label: "serving", read: (v) => v.components.reduce((a, c) => a + c.copies.serving, 0) },
      { label: "warming", read: (v) => v.components.reduce((a, c) => a + c.copies.warming, 0) },
      { label: "draining", read: (v) => v.components.reduce((a, c) => a + c.copies.draining, 0) },
      { label: "max", read: (v) => v.components.reduce((a, c) => a + c.copies.max, 0) },
    ],
  },
];

/**
 * A chart's data in uPlot's columns: seconds since the epoch, then one column per series; a
 * sample without the route or without the figure is a gap (null), not a zero.
 */
export function chartColumns(history: readonly Sample[], route: string, chart: ChartSpec): [number[], ...(number | null)[][]] {
  const xs = history.map((s) => s.atMs / 1000);
  const columns = chart.series.map((series) =>
    history.map((s) => {
      const view = routeView(s.snapshot, route);
      const value = view ? series.read(view) : undefined;
      return value === undefined || value === null || !Number.isFinite(value) ? null : value;
    }),
  );
  return [xs, ...columns];
}

/** The figures above the charts: the latest sample's, formatted. */
export type Headline = { readonly id: string; readonly label: string; readonly text: string };

const fixed = (value: number | null | undefined, digits: number, suffix = "") => (value === null || value === undefined || !Number.isFinite(value) ? "—" : `${value.toFixed(digits)}${suffix}`);

export function headlines(view: RouteView | undefined): Headline[] {
  const waiting = view ? view.route.lanes.reduce((a, l) => a + l.depth.visible + l.depth.in_flight, 0) : undefined;
  const busy = view ? share(sum(view, (c) => c.gpu_busy_fraction), view.components.length) : undefined;
  return [
    { id: "tokens-per-second", label: "tokens/s", text: fixed(view?.route.generated_tokens_per_second, 1) },
    { id: "p95", label: "p95 end to end", text: fixed(seconds(view?.route.latency_ms.end_to_end?.p95), 2, " s") },
    { id: "queued", label: "in the queues", text: fixed(waiting, 0) },
    { id: "gpu-busy", label: "GPU busy", text: fixed(busy === null || busy === undefined ? busy : busy * 100, 0, "%") },
    { id: "cost", label: "$ / 1M tokens", text: fixed(view?.route.cost.per_million_tokens, 2) },
    { id: "finished", label: "jobs finished (5 min)", text: fixed(view?.route.jobs.finished, 0) },
  ];
}

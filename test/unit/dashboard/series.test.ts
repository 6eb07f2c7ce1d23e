import { describe, expect, it } from "vitest";
import type { ComponentMetrics, MetricsSnapshot, RouteMetrics } from "#shared/core/metrics";
import { CHARTS, chartColumns, headlines, remember, routeView, type Sample } from "../../../web/dashboard/series.ts";

const route = (over: Partial<RouteMetrics> = {}): RouteMetrics => ({
  route: "llama-2-7b",
  components: ["llama-2-7b-ic"],
  lanes: [
    { lane: "interactive", queue: "q-i", depth: { visible: 3, in_flight: 2, delayed: 0 }, oldest_message_age_seconds: 4, dead_letter: { queue: "q-i-dlq", depth: 0 } },
    { lane: "batch", queue: "q-b", depth: { visible: 100, in_flight: 10, delayed: 0 }, oldest_message_age_seconds: null, dead_letter: { queue: "q-b-dlq", depth: 2 } },
  ],
  jobs: { finished: 12, succeeded: 11, truncated: false },
  latency_ms: { end_to_end: { p50: 2000, p95: 4000, p99: 5000 }, queue_wait: { p50: 100, p95: 900, p99: 1000 }, inference: { p50: 1900, p95: 3100, p99: 4000 } },
  generated_tokens: 1000,
  generated_tokens_per_second: 3.3,
  errors: { total: 1, rate: 1 / 12, by_kind: { model_error: 1 } },
  cost: { dollars_per_hour: 14.13, per_million_tokens: 1189.5 },
  profile_drift: null,
  ...over,
});

const component = (over: Partial<ComponentMetrics> = {}): ComponentMetrics => ({
  component: "llama-2-7b-ic",
  endpoint: "e",
  copies: { serving: 2, warming: 1, draining: 0, max: 4 },
  at_max_copies: false,
  running_sequences: 64,
  max_sequences: 256,
  kv_tokens: 56_000,
  max_kv_tokens: 224_000,
  gpu_busy_fraction: 1.5,
  gpus_held: 3,
  dollars_per_hour: 42.39,
  per_copy: [],
  profile_drift: null,
  ...over,
});

const snapshot = (r: RouteMetrics = route(), c: ComponentMetrics = component()): MetricsSnapshot => ({ generated_at: "2026-12-07T14:00:00.000Z", source: "embedded", window_seconds: 300, routes: [r], components: [c, component({ component: "other" })] });
const chart = (id: string) => CHARTS.find((c) => c.id === id)!;

describe("the dashboard's series", () => {
  it("keeps the last ten minutes of samples, the newest last", () => {
    const at = (s: number): Sample => ({ atMs: s * 1000, snapshot: snapshot() });
    let history: Sample[] = [];
    for (const s of [0, 300, 599, 601, 700]) history = remember(history, at(s));
    expect(history.map((h) => h.atMs / 1000)).toEqual([300, 599, 601, 700]);
  });

  it("reads a route with only the components that serve it", () => {
    const view = routeView(snapshot(), "llama-2-7b");
    expect(view?.components.map((c) => c.component)).toEqual(["llama-2-7b-ic"]);
    expect(routeView(snapshot(), "nope")).toBeUndefined();
  });

  it("gives each chart a time column and one column per series, a missing figure as a gap", () => {
    const history: Sample[] = [
      { atMs: 1_000, snapshot: snapshot() },
      { atMs: 2_000, snapshot: snapshot(route({ latency_ms: { end_to_end: null, queue_wait: null, inference: null } })) },
      { atMs: 3_000, snapshot: { ...snapshot(), routes: [] } },
    ];
    const [xs, ...latency] = chartColumns(history, "llama-2-7b", chart("latency"));
    expect(xs).toEqual([1, 2, 3]);
    expect(latency.map((column) => column[0])).toEqual([2, 4, 5, 0.9, 3.1]);
    expect(latency.every((column) => column[1] === null && column[2] === null)).toBe(true);
    const [, sequences, kv] = chartColumns(history.slice(0, 1), "llama-2-7b", chart("batch-fill"));
    expect(sequences).toEqual([0.25]);
    expect(kv).toEqual([0.25]);
    const [, waiting, inFlight, batchWaiting] = chartColumns(history.slice(0, 1), "llama-2-7b", chart("queue-depth"));
    expect([waiting?.[0], inFlight?.[0], batchWaiting?.[0]]).toEqual([3, 2, 100]);
    // GPU busy is the serving copies' mean share; copies add up every state.
    expect(chartColumns(history.slice(0, 1), "llama-2-7b", chart("gpu-busy"))[1]).toEqual([1.5]);
    expect(chartColumns(history.slice(0, 1), "llama-2-7b", chart("copies")).slice(1).map((c) => c[0])).toEqual([2, 1, 0, 4]);
  });

  it("shows a figure the source cannot measure as a gap, not a zero", () => {
    const unknown = snapshot(route(), component({ running_sequences: null, kv_tokens: null, gpu_busy_fraction: null }));
    const [, sequences, kv] = chartColumns([{ atMs: 0, snapshot: unknown }], "llama-2-7b", chart("batch-fill"));
    expect([sequences?.[0], kv?.[0]]).toEqual([null, null]);
  });

  it("formats the headline figures, with a dash for what is unknown", () => {
    const texts = Object.fromEntries(headlines(routeView(snapshot(), "llama-2-7b")).map((h) => [h.id, h.text]));
    expect(texts).toEqual({ "tokens-per-second": "3.3", p95: "4.00 s", queued: "115", "gpu-busy": "150%", cost: "1189.50", finished: "12" });
    expect(headlines(undefined).every((h) => h.text === "—")).toBe(true);
  });
});

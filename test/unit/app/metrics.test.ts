import { describe, expect, it } from "vitest";
import { deadLetterQueueName, prefersPrometheusText, readMetrics, type MetricsDeps } from "#shared/app/metrics";
import { ForbiddenError } from "#shared/core/errors";
import type { Lane } from "#shared/core/lanes";
import { testBreakdown } from "../../helpers/breakdown.ts";
import { METRICS_MAX_JOBS, METRICS_WINDOW_SECONDS, type FinishedJob } from "#shared/core/metrics";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "#shared/core/metrics-prometheus";
import type { Component } from "#shared/core/routes";
import { defaultCatalog, MemoryLedger } from "../../helpers/fakes.ts";

const now = new Date("2026-01-01T00:10:00Z");
const catalog = defaultCatalog();
const [routeName] = [...catalog.routes.keys()] as [string];
const queueName = (route: string, lane: Lane = "batch") => `q-${route}${lane === "batch" ? "" : "-interactive"}`;

function deps(overrides: Partial<MetricsDeps> = {}): MetricsDeps & { readonly reads: { since?: Date; limit?: number } } {
  const reads: { since?: Date; limit?: number } = {};
  const job: FinishedJob = {
    job_id: "job_1", status: "SUCCEEDED", created_at: "2026-01-01T00:09:00Z", started_at: "2026-01-01T00:09:02Z", finished_at: "2026-01-01T00:09:10Z",
    breakdown: testBreakdown({ queue_wait_ms: 2_000, generated_tokens: 600 }),
  };
  return {
    reads,
    catalog,
    clock: { now: () => now },
    metricsSource: "embedded",
    ledger: new MemoryLedger(),
    queueName,
    queueMetrics: {
      depth: async (queue) => (queue.endsWith("-dlq") ? { visible: queue.includes("interactive") ? 0 : 2, inFlight: 0, delayed: 0 } : { visible: 5, inFlight: 1, delayed: 0 }),
      oldestMessageAgeSeconds: async (queue) => (queue.includes("interactive") ? undefined : 42),
    },
    engineMetrics: {
      read: async (component: Component) => ({
        copies: { serving: 1, warming: 0, draining: 0 },
        runningSequences: 7,
        kvTokens: 7000,
        gpuBusyFraction: 0.25,
        perCopy: [{ copy: "0", state: "serving", runningSequences: 7, kvTokens: 7000, gpuBusyFraction: 0.25, generatedTokensPerSecond: component.name.length }],
      }),
    },
    finishedJobs: {
      finishedSince: async (route, since, limit) => {
        Object.assign(reads, { since, limit });
        return { jobs: route === routeName ? [job] : [], truncated: false };
      },
    },
    ...overrides,
  };
}

describe("readMetrics", () => {
  it("refuses a member key, naming the admin key it needs", async () => {
    await expect(readMetrics(deps(), { tenant: "acme", role: "member" })).rejects.toThrow(ForbiddenError);
    await expect(readMetrics(deps(), { tenant: "acme", role: "member" })).rejects.toThrow(/admin API key/);
  });

  it("asks no oldest age of an empty queue", async () => {
    const asked: string[] = [];
    const d = deps({
      queueMetrics: {
        depth: async () => ({ visible: 0, inFlight: 0, delayed: 0 }),
        oldestMessageAgeSeconds: async (queue) => {
          asked.push(queue);
          return 99;
        },
      },
    });
    const snapshot = await readMetrics(d, { tenant: "ops", role: "admin" });
    expect(asked).toEqual([]);
    expect(snapshot.routes.flatMap((r) => r.lanes.map((l) => l.oldest_message_age_seconds))).toEqual(snapshot.routes.flatMap((r) => r.lanes.map(() => null)));
  });

  it("reads every lane's queue and dead-letter queue, each component, and the window's finished jobs, bounded", async () => {
    const d = deps();
    const snapshot = await readMetrics(d, { tenant: "ops", role: "admin" });
    expect(d.reads).toEqual({ since: new Date(now.getTime() - METRICS_WINDOW_SECONDS * 1000), limit: METRICS_MAX_JOBS });
    expect(snapshot).toMatchObject({ generated_at: now.toISOString(), source: "embedded", window_seconds: METRICS_WINDOW_SECONDS });
    const route = snapshot.routes.find((r) => r.route === routeName)!;
    expect(route.lanes).toEqual([
      { lane: "interactive", queue: queueName(routeName, "interactive"), depth: { visible: 5, in_flight: 1, delayed: 0 }, oldest_message_age_seconds: null, dead_letter: { queue: deadLetterQueueName(queueName(routeName, "interactive")), depth: 0 } },
      { lane: "batch", queue: queueName(routeName), depth: { visible: 5, in_flight: 1, delayed: 0 }, oldest_message_age_seconds: 42, dead_letter: { queue: `${queueName(routeName)}-dlq`, depth: 2 } },
    ]);
    expect(route.latency_ms.queue_wait?.p50).toBe(2000);
    expect(route.latency_ms.inference?.p99).toBe(8000);
    expect(route.generated_tokens_per_second).toBe(600 / METRICS_WINDOW_SECONDS);
    expect(snapshot.components.map((c) => c.component)).toEqual([...catalog.components.keys()]);
  });
});

describe("profile drift of continuous-batching components", () => {
  it("shows each component's drift as the batchers stored it, decode and prefill apart, and a rolling route's as its first component's", async () => {
    // Prepare: the default route runs on a rolling engine (lmi-rolling).
    const ledger = new MemoryLedger();
    const [component] = catalog.routes.get(routeName)?.components ?? [];
    if (!component) throw new Error("no component");
    const decode = Array.from({ length: 10 }, () => Math.log(1.4));
    await ledger.saveDrift(component.name, { decode: { logRatios: decode, factor: 1.4 }, prefill: { logRatios: [0, 0], factor: 1 }, atMs: now.getTime() }, new Date(now.getTime() + 60_000));

    // Act
    const snapshot = await readMetrics(deps({ ledger }), { tenant: "ops", role: "admin" });
    const text = await renderPrometheus(snapshot);

    // Assess
    const stored = snapshot.components.find((c) => c.component === component.name)?.profile_drift;
    expect(stored).toMatchObject({ factor: 1.4, batches: 10, threshold: 0.15, prefill: { ratio: 1, factor: 1, samples: 2 }, component: component.name });
    expect(stored?.ratio).toBeCloseTo(1.4, 6);
    expect(snapshot.routes.find((r) => r.route === routeName)?.profile_drift).toEqual(stored);
    expect(snapshot.components.filter((c) => c.component !== component.name).every((c) => c.profile_drift === null)).toBe(true);
    expect(text).toContain(`batchline_component_profile_correction_factor{component="${component.name}",part="decode"} 1.4`);
    expect(text).toContain(`batchline_component_profile_correction_factor{component="${component.name}",part="prefill"} 1`);
  });
});

describe("Prometheus text", () => {
  it("has HELP and TYPE lines and samples labelled by route, lane, component and copy; no sample for an unknown figure", async () => {
    const snapshot = await readMetrics(deps(), { tenant: "ops", role: "admin" });
    const text = await renderPrometheus(snapshot);
    const [component] = [...catalog.components.keys()] as [string];
    expect(PROMETHEUS_CONTENT_TYPE).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain("# HELP batchline_queue_oldest_message_age_seconds Age of the oldest message in a route lane's queue");
    expect(text).toContain("# TYPE batchline_queue_oldest_message_age_seconds gauge");
    expect(text).toContain(`batchline_queue_oldest_message_age_seconds{route="${routeName}",lane="batch"} 42`);
    expect(text).not.toContain(`batchline_queue_oldest_message_age_seconds{route="${routeName}",lane="interactive"}`);
    expect(text).toContain(`batchline_queue_messages{route="${routeName}",lane="batch",state="in_flight"} 1`);
    expect(text).toContain(`batchline_dead_letter_messages{route="${routeName}",lane="batch"} 2`);
    expect(text).toContain(`batchline_job_latency_milliseconds{route="${routeName}",phase="queue_wait",quantile="0.5"} 2000`);
    expect(text).toContain(`batchline_copy_generated_tokens_per_second{component="${component}",copy="0",state="serving"} ${component.length}`);
    expect(text).toContain(`batchline_gpu_busy_ratio{component="${component}"} 0.25`);
  });
});

describe("content negotiation", () => {
  it("answers Prometheus text only when text/plain ranks above JSON", () => {
    expect(prefersPrometheusText(undefined)).toBe(false);
    expect(prefersPrometheusText("application/json")).toBe(false);
    expect(prefersPrometheusText("text/plain")).toBe(true);
    expect(prefersPrometheusText("text/plain;version=0.0.4")).toBe(true);
    // Prometheus' own scrape header.
    expect(prefersPrometheusText("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")).toBe(true);
    expect(prefersPrometheusText("*/*")).toBe(false);
    expect(prefersPrometheusText("text/plain;q=0.5, application/json")).toBe(false);
    expect(prefersPrometheusText("text/*, application/json;q=0.9")).toBe(true);
  });
});

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { componentMetrics, finishedJobsSummary, laneMetrics, routeMetrics, type ComponentReading, type FinishedJob } from "#shared/core/metrics";
import { gpuHourPrice } from "#shared/core/routes";
import { costPerMillionTokens, percentile } from "#shared/core/stats";
import { testBreakdown } from "../../helpers/breakdown.ts";

const catalog = loadRouteCatalog(join(process.cwd(), "infra", "routes.yml"));
const route = catalog.routes.get("llama-2-7b")!;
const component = catalog.components.get("llama-2-7b-ic")!;

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
/** A job created at `created` s, started at `started` s, finished at `finished` s. */
function succeeded(created: number, started: number, finished: number, tokens: number): FinishedJob {
  return {
    job_id: `job_${created}_${finished}`, status: "SUCCEEDED", created_at: at(created), started_at: at(started), finished_at: at(finished),
    breakdown: testBreakdown({ queue_wait_ms: (started - created) * 1000, generated_tokens: tokens }),
  };
}
const failed = (code: string, status: "FAILED" | "EXPIRED" | "CANCELLED" = "FAILED"): FinishedJob => ({
  job_id: `job_${code}_${status}`, status, created_at: at(0), finished_at: at(1), error: { code, message: code },
});

describe("percentile", () => {
  it("interpolates between closest ranks (R-7) and refuses a quantile outside [0, 1]", () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(percentile([10, 20, 30, 40, 50], 0.95)).toBeCloseTo(48);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNaN();
    expect(() => percentile([1], 1.5)).toThrow(/quantile/);
  });
});

describe("cost per million tokens", () => {
  it("is dollars an hour over tokens an hour, in millions; infinite with no tokens", () => {
    // One H100 at $14.1335/h making 1000 tokens/s: 3.6 M tokens an hour.
    expect(costPerMillionTokens(14.1335, 1, 1000)).toBeCloseTo(14.1335 / 3.6, 6);
    expect(costPerMillionTokens(14.1335, 2, 1000)).toBeCloseTo((2 * 14.1335) / 3.6, 6);
    expect(costPerMillionTokens(14.1335, 1, 0)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("finished jobs summary", () => {
  it("splits end to end into queue wait and inference, over the succeeded jobs", () => {
    const jobs = [succeeded(0, 2, 10, 100), succeeded(0, 4, 6, 50), succeeded(10, 11, 15, 150)];
    const summary = finishedJobsSummary(jobs, 300, false);
    expect(summary.latency_ms.queue_wait).toEqual({ p50: 2000, p95: percentile([2000, 4000, 1000], 0.95), p99: percentile([2000, 4000, 1000], 0.99) });
    expect(summary.latency_ms.inference?.p50).toBe(4000);
    expect(summary.latency_ms.end_to_end?.p50).toBe(6000);
    expect(summary.jobs).toEqual({ finished: 3, succeeded: 3, truncated: false });
    expect(summary.generated_tokens).toBe(300);
    expect(summary.generated_tokens_per_second).toBe(1);
  });

  it("counts failed and expired jobs by their error code, not cancelled ones, and gives the rate over outcomes", () => {
    const jobs = [succeeded(0, 1, 2, 10), succeeded(0, 1, 2, 10), failed("model_error"), failed("model_error"), failed("deadline_passed", "EXPIRED"), failed("cancelled", "CANCELLED")];
    const summary = finishedJobsSummary(jobs, 300, true);
    expect(summary.errors).toEqual({ total: 3, rate: 3 / 5, by_kind: { model_error: 2, deadline_passed: 1 } });
    expect(summary.jobs).toEqual({ finished: 6, succeeded: 2, truncated: true });
  });

  it("has no percentiles and no rate without jobs", () => {
    const summary = finishedJobsSummary([], 300, false);
    expect(summary.latency_ms).toEqual({ end_to_end: null, queue_wait: null, inference: null });
    expect(summary.errors.rate).toBeNull();
    expect(summary.generated_tokens_per_second).toBe(0);
  });
});

describe("component and route metrics", () => {
  const reading: ComponentReading = {
    copies: { serving: 1, warming: 1, draining: 0 },
    runningSequences: 40,
    kvTokens: 20_000,
    gpuBusyFraction: 0.5,
    perCopy: [
      { copy: "0", state: "serving", runningSequences: 40, kvTokens: 20_000, gpuBusyFraction: 0.5, generatedTokensPerSecond: 900 },
      { copy: "1", state: "warming", runningSequences: 0, kvTokens: 0 },
    ],
  };

  it("bills every placed copy, warming ones too, and puts the limits of the serving copies beside the load", () => {
    const metrics = componentMetrics(component, reading);
    expect(metrics.copies).toEqual({ serving: 1, warming: 1, draining: 0, max: 2 });
    expect(metrics.at_max_copies).toBe(true);
    expect(metrics.gpus_held).toBe(2);
    expect(metrics.dollars_per_hour).toBeCloseTo(2 * gpuHourPrice(component));
    expect(metrics.max_sequences).toBe(component.limits.max_sequences);
    expect(metrics.max_kv_tokens).toBe(component.limits.token_budget);
    expect(metrics.per_copy[1]).toEqual({ copy: "1", state: "warming", running_sequences: 0, kv_tokens: 0, gpu_busy_fraction: null, generated_tokens_per_second: null });
  });

  it("leaves out what a source cannot measure (null), as CloudWatch without per-copy figures", () => {
    const metrics = componentMetrics(component, { copies: { serving: 1, warming: 0, draining: 0 }, perCopy: [] });
    expect([metrics.running_sequences, metrics.kv_tokens, metrics.gpu_busy_fraction]).toEqual([null, null, null]);
    expect(metrics.at_max_copies).toBe(false);
  });

  it("prices a route's tokens at its components' hourly cost, lanes in their order", () => {
    const components = [componentMetrics(component, reading)];
    const summary = finishedJobsSummary([succeeded(0, 1, 2, 3600 * 300)], 300, false);
    const depth = { visible: 3, inFlight: 2, delayed: 1 };
    const lane = (name: "batch" | "interactive") => ({ lane: name, queue: `q-${name}`, depth, oldestMessageAgeSeconds: name === "batch" ? 12 : undefined, deadLetterQueue: `q-${name}-dlq`, deadLetterDepth: { visible: 1, inFlight: 0, delayed: 0 } });
    const metrics = routeMetrics(route, [lane("batch"), lane("interactive")], summary, components);
    // 3600 tokens/s = 12.96 M tokens an hour.
    expect(metrics.cost.per_million_tokens).toBeCloseTo(components[0]!.dollars_per_hour / 12.96, 6);
    expect(metrics.lanes.map((l) => l.lane)).toEqual(["interactive", "batch"]);
    expect(metrics.lanes[1]).toEqual(laneMetrics(lane("batch")));
    expect(metrics.lanes[1]).toMatchObject({ depth: { visible: 3, in_flight: 2, delayed: 1 }, oldest_message_age_seconds: 12, dead_letter: { queue: "q-batch-dlq", depth: 1 } });
    expect(metrics.lanes[0]?.oldest_message_age_seconds).toBeNull();
    expect(routeMetrics(route, [], finishedJobsSummary([], 300, false), components).cost.per_million_tokens).toBeNull();
  });
});

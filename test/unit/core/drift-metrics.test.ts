import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { profileDriftMetrics } from "#shared/core/drift-metrics";
import { staticBatchMs } from "#shared/core/latency-model";
import type { FinishedJob } from "#shared/core/metrics";
import { DRIFT_THRESHOLD } from "#shared/core/profile-drift";
import { buildRouteCatalog } from "#shared/core/routes";
import { testBreakdown } from "../../helpers/breakdown.ts";

/** GET /v1/metrics' profile_drift from the window's finished jobs (core/drift-metrics.ts). */
const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
raw.components["llama-2-7b-ic"].engine = "lmi-dynamic";
const catalog = buildRouteCatalog(raw);
const staticRoute = catalog.routes.get("llama-2-7b")!;
const rollingRoute = catalog.routes.get("llama-3-8b")!;
const component = catalog.components.get("llama-2-7b-ic")!;

/** The jobs of static batch `n`: `size` jobs of 200 + 100 tokens, the call `pace` times the profile's time, finished at `n` s. */
function batch(n: number, size: number, pace: number, status: FinishedJob["status"] = "SUCCEEDED"): FinishedJob[] {
  const predictedMs = staticBatchMs(component.latency, Array.from({ length: size }, () => ({ promptTokens: 200, newTokens: 100 })));
  return Array.from({ length: size }, (_, i) => ({
    job_id: `job_${n}_${i}`, status, created_at: new Date(n * 1000 - 5000).toISOString(), finished_at: new Date(n * 1000).toISOString(),
    breakdown: testBreakdown({ gpu_ms: predictedMs * pace, gpu_batch: { id: `gpu_${n}`, sequences: size, kv_tokens: size * 300 }, prompt_tokens: 200, generated_tokens: 100, cost: { usd: 0.01, rule: "static-batch" } }),
  }));
}

describe("profile_drift of GET /v1/metrics", () => {
  it("gives the median of the window's static batches against the profile, and the correction the estimator makes of them", () => {
    const jobs = Array.from({ length: 10 }, (_, n) => batch(n + 1, 4, 1.3)).flat();

    const drift = profileDriftMetrics(jobs, staticRoute.components);

    expect(drift).toMatchObject({ batches: 10, threshold: DRIFT_THRESHOLD });
    expect(drift?.ratio).toBeCloseTo(1.3, 6);
    expect(drift?.factor).toBeCloseTo(1.3, 6);
  });

  it("counts a batch only once all its jobs finished, succeeded, in the window", () => {
    const whole = batch(1, 4, 1);
    const cut = batch(2, 4, 2).slice(1);
    const failedOne = batch(3, 2, 2).map((j, i) => (i === 0 ? { ...j, status: "FAILED" as const } : j));

    const drift = profileDriftMetrics([...whole, ...cut, ...failedOne], staticRoute.components);

    expect(drift).toMatchObject({ batches: 1, factor: 1 });
    expect(drift?.ratio).toBeCloseTo(1, 6);
  });

  it("is null for a route of continuous batching, whose calls share their copy", () => {
    expect(profileDriftMetrics(batch(1, 4, 1.3), rollingRoute.components)).toBeNull();
  });

  it("has no ratio before any batch", () => {
    expect(profileDriftMetrics([], staticRoute.components)).toEqual({ ratio: null, factor: 1, batches: 0, threshold: DRIFT_THRESHOLD });
  });
});

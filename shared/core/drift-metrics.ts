import type { ComponentDrift } from "./component-drift.ts";
import { staticBatchMs } from "./latency-model.ts";
import type { FinishedJob } from "./metrics.ts";
import { DRIFT_THRESHOLD, driftRatio, NO_DRIFT, noteDrift } from "./profile-drift.ts";
import type { Component } from "./routes.ts";

/**
 * GET /v1/metrics' `profile_drift` of a route (docs/metrics.md): how its GPU batches of the window
 * ran against the component's profile, from the breakdowns its finished jobs carry. A static
 * batch (lmi-dynamic) is one call whose time every job of it carries (gpu_ms); the profile's
 * prediction is its static timeline over the jobs' prompt and generated tokens. A batch counts
 * once all its jobs have finished, succeeded, within the window. A continuous-batching engine's
 * call shares its copy with whatever else runs, so its prediction needs the copy's load while it
 * ran, which only the batcher knows: its route reads the drift the batchers stored for its
 * components (component-drift.ts), the decode step's as `ratio` and `factor`, the prefill's apart.
 */
export type ProfileDriftMetrics = {
  /** Median of measured over predicted time of the window's last batches (profile-drift.ts); of decode steps for a rolling engine. */
  readonly ratio: number | null;
  /** The correction the estimator gives over these batches: what a batcher that ran them plans with. */
  readonly factor: number;
  /** Samples in the window: static batches, or a rolling engine's calls timed for their decode. */
  readonly batches: number;
  readonly threshold: number;
  /** A rolling engine's prefill, timed apart from its decode steps: its ratio, factor and samples. */
  readonly prefill?: { readonly ratio: number | null; readonly factor: number; readonly samples: number } | undefined;
  /** The component a rolling engine's figures are of. */
  readonly component?: string | undefined;
};

/** A component's stored drift as metrics (GET /v1/metrics' components[].profile_drift); null before a batcher stored any. */
export function storedDriftMetrics(component: string, drift: ComponentDrift | undefined): ProfileDriftMetrics | null {
  if (!drift) return null;
  return {
    ratio: driftRatio(drift.decode) ?? null,
    factor: drift.decode.factor,
    batches: drift.decode.logRatios.length,
    threshold: DRIFT_THRESHOLD,
    prefill: { ratio: driftRatio(drift.prefill) ?? null, factor: drift.prefill.factor, samples: drift.prefill.logRatios.length },
    component,
  };
}

export function profileDriftMetrics(jobs: readonly FinishedJob[], components: readonly Component[]): ProfileDriftMetrics | null {
  const timed = components.filter((c) => c.engine === "lmi-dynamic");
  if (timed.length === 0) return null;
  const batches = Map.groupBy(
    jobs.filter((j) => j.breakdown && timed.some((c) => c.name === j.breakdown?.component)),
    (j) => j.breakdown?.gpu_batch.id ?? "",
  );
  const samples = [...batches.values()].flatMap((members) => {
    const first = members[0]?.breakdown;
    const component = timed.find((c) => c.name === first?.component);
    if (!first || !component || members.length !== first.gpu_batch.sequences || members.some((j) => j.status !== "SUCCEEDED")) return [];
    const predictedMs = staticBatchMs(component.latency, members.map((j) => ({ promptTokens: j.breakdown?.prompt_tokens ?? 0, newTokens: j.breakdown?.generated_tokens ?? 0 })));
    const endedMs = Math.max(...members.map((j) => Date.parse(j.finished_at ?? "") || 0));
    return [{ measuredMs: first.gpu_ms, predictedMs, endedMs }];
  });
  const state = samples.sort((a, b) => a.endedMs - b.endedMs).reduce(noteDrift, NO_DRIFT);
  return { ratio: driftRatio(state) ?? null, factor: state.factor, batches: samples.length, threshold: DRIFT_THRESHOLD };
}

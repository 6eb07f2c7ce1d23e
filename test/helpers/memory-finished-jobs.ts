import type { FinishedJob } from "#shared/core/metrics";
import type { FinishedJobIndex } from "#shared/ports";
import type { MemoryJobStore } from "./fakes.ts";

/** route-finished-index over a MemoryJobStore's jobs, as the DynamoDB index behaves: finished ones only, newest first. */
export class MemoryFinishedJobs implements FinishedJobIndex {
  readonly #store: MemoryJobStore;

  constructor(store: MemoryJobStore) {
    this.#store = store;
  }

  async finishedSince(route: string, since: Date, limit: number) {
    const finished = [...this.#store.jobs.values()]
      .filter((j) => j.model === route && j.finished_at !== undefined && j.finished_at >= since.toISOString())
      .sort((a, b) => (b.finished_at ?? "").localeCompare(a.finished_at ?? ""));
    const jobs: FinishedJob[] = finished.slice(0, limit).map((j) => ({
      job_id: j.job_id, status: j.status, created_at: j.created_at, started_at: j.started_at, finished_at: j.finished_at,
      breakdown: j.breakdown, error: j.error, lane: j.lane, component: j.component,
    }));
    return { jobs, truncated: finished.length > limit };
  }
}

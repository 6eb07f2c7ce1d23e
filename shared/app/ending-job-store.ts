import type { Progress } from "../core/continuation.ts";
import type { JobRecord } from "../core/jobs.ts";
import type { GpuBatchPlacement, JobEnding, JobOutcome, JobStore } from "../ports.ts";

/**
 * A JobStore that acts on every job it moves to a terminal state itself (finish, endUnfinished):
 * the conditional write decides once, so `ended` runs once per job, and a write another caller
 * made first runs nothing here. Everything else passes through.
 */
export abstract class EndingJobStore implements JobStore {
  readonly #jobs: JobStore;

  constructor(jobs: JobStore) {
    this.#jobs = jobs;
  }

  protected abstract ended(job: JobRecord): Promise<void> | void;

  create(jobs: readonly JobRecord[]) {
    return this.#jobs.create(jobs);
  }
  get(jobId: string) {
    return this.#jobs.get(jobId);
  }
  claim(jobId: string, placement: GpuBatchPlacement, at: Date) {
    return this.#jobs.claim(jobId, placement, at);
  }
  saveProgress(jobId: string, attempt: number, progress: Progress, fromTokens: number) {
    return this.#jobs.saveProgress(jobId, attempt, progress, fromTokens);
  }
  noteSubscribed(jobId: string) {
    return this.#jobs.noteSubscribed(jobId);
  }
  noteWaiting(jobId: string, reason: string, claimedAttempt?: number) {
    return this.#jobs.noteWaiting(jobId, reason, claimedAttempt);
  }
  listByBatch(batchId: string, page: Parameters<JobStore["listByBatch"]>[1]) {
    return this.#jobs.listByBatch(batchId, page);
  }
  listRecentByModel(model: string, since: Date, limit: number) {
    return this.#jobs.listRecentByModel(model, since, limit);
  }
  async finish(jobId: string, attempt: number, outcome: JobOutcome, at: Date) {
    return this.#after(await this.#jobs.finish(jobId, attempt, outcome, at));
  }
  async endUnfinished(jobId: string, ending: JobEnding, at: Date) {
    return this.#after(await this.#jobs.endUnfinished(jobId, ending, at));
  }

  async #after(job: JobRecord | undefined): Promise<JobRecord | undefined> {
    if (job) await this.ended(job);
    return job;
  }
}

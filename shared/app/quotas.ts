import { RateLimitedError } from "../core/errors.ts";
import type { JobRecord } from "../core/jobs.ts";
import { DEFAULT_QUOTA, minuteOf, secondsToNextMinute, tokensCharged } from "../core/quotas.ts";
import type { Clock, JobEnding, JobOutcome, JobStore, TenantStore, UsageMeter, GpuBatchPlacement } from "../ports.ts";

export type QuotaDeps = { readonly tenants: TenantStore; readonly usage: UsageMeter; readonly clock: Clock };

/** When a job is refused for the tenant's jobs-in-flight quota, come back after this. */
const JOBS_RETRY_AFTER_SECONDS = 5;

/**
 * Charges a submission to its tenant's quotas before anything is written: job slots always, and
 * for interactive jobs the tokens of this minute (a batch file's jobs queue up and are bounded by
 * the jobs in flight alone). Returns the refund, for a submission that fails before it is stored.
 */
export async function chargeSubmission(
  deps: QuotaDeps,
  tenant: string,
  jobs: readonly { readonly prompt_tokens: number; readonly max_tokens: number }[],
  kind: "interactive" | "batch",
): Promise<() => Promise<void>> {
  const quota = (await deps.tenants.quotaOf(tenant)) ?? DEFAULT_QUOTA;
  if (!(await deps.usage.takeJobs(tenant, jobs.length, quota.max_jobs_in_flight))) {
    throw new RateLimitedError(`tenant ${tenant} would have more than ${quota.max_jobs_in_flight} jobs in flight, its quota; wait for some to finish`, JOBS_RETRY_AFTER_SECONDS);
  }
  const giveBackJobs = () => deps.usage.giveBackJobs(tenant, jobs.length);
  if (kind === "batch") return giveBackJobs;
  const now = deps.clock.now();
  const minute = minuteOf(now);
  const tokens = jobs.reduce((sum, j) => sum + tokensCharged(j.prompt_tokens, j.max_tokens), 0);
  if (!(await deps.usage.chargeTokens(tenant, minute, tokens, quota.tokens_per_minute))) {
    await giveBackJobs();
    throw new RateLimitedError(`tenant ${tenant} would pass ${quota.tokens_per_minute} tokens this minute, its quota`, secondsToNextMinute(now));
  }
  return async () => {
    await Promise.all([giveBackJobs(), deps.usage.refundTokens(tenant, minute, tokens)]);
  };
}

/**
 * A JobStore that gives a job's slot back to its tenant when, and only when, this store moved the
 * job to a terminal state: the conditional write decides once, so the slot comes back once.
 */
export class QuotaReleasingJobStore implements JobStore {
  readonly #jobs: JobStore;
  readonly #usage: UsageMeter;

  constructor(jobs: JobStore, usage: UsageMeter) {
    this.#jobs = jobs;
    this.#usage = usage;
  }

  create(jobs: readonly JobRecord[]) {
    return this.#jobs.create(jobs);
  }
  get(jobId: string) {
    return this.#jobs.get(jobId);
  }
  claim(jobId: string, placement: GpuBatchPlacement, at: Date) {
    return this.#jobs.claim(jobId, placement, at);
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
    return this.#released(await this.#jobs.finish(jobId, attempt, outcome, at));
  }
  async endUnfinished(jobId: string, ending: JobEnding, at: Date) {
    return this.#released(await this.#jobs.endUnfinished(jobId, ending, at));
  }

  async #released(job: JobRecord | undefined): Promise<JobRecord | undefined> {
    if (job) await this.#usage.giveBackJobs(job.tenant, 1);
    return job;
  }
}

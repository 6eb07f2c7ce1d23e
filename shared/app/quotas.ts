import { RateLimitedError } from "../core/errors.ts";
import type { JobRecord } from "../core/jobs.ts";
import { DEFAULT_QUOTA, minuteOf, secondsToNextMinute, slotOf, tokensCharged } from "../core/quotas.ts";
import type { Clock, JobSlot, JobStore, Sleep, TenantStore, UsageMeter } from "../ports.ts";
import { EndingJobStore } from "./ending-job-store.ts";
import { retryWhileUnavailable } from "./store-retry.ts";

export type QuotaDeps = { readonly tenants: TenantStore; readonly usage: UsageMeter; readonly clock: Clock; readonly sleep: Sleep };

/** When a job is refused for the tenant's jobs-in-flight quota, come back after this. */
const JOBS_RETRY_AFTER_SECONDS = 5;

/**
 * Charges a submission to its tenant's quotas before anything is written: job slots always, and
 * for interactive jobs the tokens of this minute (a batch file's jobs queue up and are bounded by
 * the jobs in flight alone). Every charge is keyed by the submission's job ids, so one sent again
 * (a lost answer) counts once. Returns the refund, for a submission that fails before it is stored.
 */
export async function chargeSubmission(
  deps: QuotaDeps,
  tenant: string,
  jobs: readonly { readonly slot: JobSlot; readonly prompt_tokens: number; readonly max_tokens: number }[],
  kind: "interactive" | "batch",
): Promise<() => Promise<void>> {
  const quota = (await deps.tenants.quotaOf(tenant)) ?? DEFAULT_QUOTA;
  const slots = jobs.map((j) => j.slot);
  // Given back, and refunded, again while the store is down: both are no-ops once done (or never
  // taken), and a refund lost to an outage would hold the slots for good (a batch file's 40 in
  // the chaos run's DynamoDB crash).
  const giveBackJobs = () => retryWhileUnavailable(deps.sleep, () => deps.usage.giveBackJobs(tenant, slots));
  // A take (or charge) that failed may have landed unanswered (its store killed mid-request).
  const undoing = (undo: () => Promise<unknown>) => async (error: unknown) => {
    await undo().catch(() => undefined);
    throw error;
  };
  if (!(await deps.usage.takeJobs(tenant, slots, quota.max_jobs_in_flight).catch(undoing(giveBackJobs)))) {
    throw new RateLimitedError(`tenant ${tenant} would have more than ${quota.max_jobs_in_flight} jobs in flight, its quota; wait for some to finish`, JOBS_RETRY_AFTER_SECONDS);
  }
  const [first] = slots;
  if (kind === "batch" || !first) return giveBackJobs;
  const now = deps.clock.now();
  const minute = minuteOf(now);
  const charge = { id: first.job_id, tokens: jobs.reduce((sum, j) => sum + tokensCharged(j.prompt_tokens, j.max_tokens), 0) };
  const refund = async () => {
    await Promise.all([giveBackJobs(), retryWhileUnavailable(deps.sleep, () => deps.usage.refundTokens(tenant, minute, charge))]);
  };
  if (!(await deps.usage.chargeTokens(tenant, minute, charge, quota.tokens_per_minute).catch(undoing(refund)))) {
    await giveBackJobs();
    throw new RateLimitedError(`tenant ${tenant} would pass ${quota.tokens_per_minute} tokens this minute, its quota`, secondsToNextMinute(now));
  }
  return refund;
}

/** Gives an ended job's slot back; again for the same job gives nothing more (a redelivery finding it ended calls this too). */
export function giveBackSlot(usage: UsageMeter, job: JobRecord): Promise<void> {
  return usage.giveBackJobs(job.tenant, [slotOf(job)]);
}

/**
 * A JobStore that gives a job's slot back to its tenant when, and only when, this store moved the
 * job to a terminal state: the conditional write decides once, so the slot comes back once.
 */
export class QuotaReleasingJobStore extends EndingJobStore {
  readonly #usage: UsageMeter;

  constructor(jobs: JobStore, usage: UsageMeter) {
    super(jobs);
    this.#usage = usage;
  }

  protected ended(job: JobRecord): Promise<void> {
    return giveBackSlot(this.#usage, job);
  }
}

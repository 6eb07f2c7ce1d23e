import { ConflictError } from "../core/errors.ts";
import { isTerminal, type JobRecord } from "../core/jobs.ts";
import type { Clock, JobEnding, JobStore, BatchStore } from "../ports.ts";
import { notifyJob, type NotifyDeps } from "./notify.ts";
import { batchCounts, getBatch, getJob, toBatchView, type BatchView } from "./queries.ts";
import { reportBatchProgress } from "./batch-progress.ts";

export type CancelDeps = NotifyDeps & { readonly jobs: JobStore; readonly batches: BatchStore; readonly clock: Clock };

const cancelled = (how: string): JobEnding => ({ status: "CANCELLED", error: { code: "cancelled", message: `cancelled ${how}` } });

/**
 * Cancels a job of the caller's tenant. A queued job never reaches the GPU; a running one is
 * cancelled at once and its result, when the GPU returns it, is not written (the write is fenced
 * on RUNNING). Cancelling a cancelled job again is a no-op; a finished one is a conflict.
 */
export async function cancelJob(deps: CancelDeps, tenant: string, jobId: string, how = "by request"): Promise<JobRecord> {
  const job = await getJob(deps, tenant, jobId);
  if (job.status === "CANCELLED") return job;
  if (isTerminal(job.status)) throw alreadyFinished(job);
  const ended = await deps.jobs.endUnfinished(jobId, cancelled(how), deps.clock.now());
  const current = ended ?? (await getJob(deps, tenant, jobId));
  if (!ended) {
    if (current.status === "CANCELLED") return current;
    throw new ConflictError(`job ${jobId} finished as ${current.status} before it could be cancelled`);
  }
  await notifyJob(deps, ended);
  if (ended.batch_id !== undefined) await reportBatchProgress(deps, ended.batch_id);
  return ended;
}

/**
 * Cancels several jobs of the caller's tenant, all or none: every job is checked first, so that
 * an unknown, foreign or finished one among them cancels nothing.
 */
export async function cancelJobs(deps: CancelDeps, tenant: string, jobIds: readonly string[], how = "by request"): Promise<JobRecord[]> {
  const ids = [...new Set(jobIds)];
  const jobs = await Promise.all(ids.map((id) => getJob(deps, tenant, id)));
  const finished = jobs.find((j) => isTerminal(j.status) && j.status !== "CANCELLED");
  if (finished) throw alreadyFinished(finished);
  const ended: JobRecord[] = [];
  for (const id of ids) ended.push(await cancelJob(deps, tenant, id, how));
  return ended;
}

const alreadyFinished = (job: JobRecord) =>
  new ConflictError(`job ${job.job_id} already ${job.status}; only queued or running jobs can be cancelled`);

/** Cancels every job of a batch that has not finished; the finished ones keep their results. */
export async function cancelBatch(deps: CancelDeps, tenant: string, batchId: string): Promise<BatchView> {
  const batch = await getBatch(deps, tenant, batchId);
  const at = deps.clock.now();
  let cursor: string | undefined;
  do {
    const page = await deps.jobs.listByBatch(batchId, { limit: 1000, cursor });
    const unfinished = page.items.filter((j) => !isTerminal(j.status));
    const ended = await Promise.all(unfinished.map((j) => deps.jobs.endUnfinished(j.job_id, cancelled("with its batch"), at)));
    await Promise.all(ended.map((j) => (j ? notifyJob(deps, j) : undefined)));
    cursor = page.cursor;
  } while (cursor !== undefined);
  await reportBatchProgress(deps, batchId);
  return toBatchView(batch, await batchCounts(deps, batch));
}

import { stopsWhenCallerLeaves } from "../core/client-abort.ts";
import { ConflictError } from "../core/errors.ts";
import { isTerminal, type JobRecord } from "../core/jobs.ts";
import type { RouteCatalog } from "../core/routes.ts";
import type { CapacityLedger, Clock, JobEnding, JobStore, BatchStore, QueueBoardStore } from "../ports.ts";
import { notifyJob, type NotifyDeps } from "./notify.ts";
import { batchCounts, getBatch, getJob, toBatchView, type BatchView } from "./queries.ts";
import { reportBatchProgress, type BatchControlDeps } from "./batch-progress.ts";
import { changeTo, epochSeconds, fromStatusesOf } from "../core/openai-batches.ts";
import { leaveLine } from "./waiting.ts";

export type CancelDeps = NotifyDeps & {
  readonly jobs: JobStore;
  readonly batches: BatchStore;
  readonly clock: Clock;
  readonly catalog: RouteCatalog;
  readonly ledger: CapacityLedger;
  readonly queueBoard: QueueBoardStore;
};

/** A job cancelled before any batcher took it: it leaves the line it waited in. */
const leftTheLine = (before: JobRecord, ended: JobRecord) => before.status === "QUEUED" && ended.attempt === before.attempt;

/** A cancel mark outlives any GPU call it could stop: SageMaker ends a call at 60 s. */
export const CANCEL_MARK_TTL_MS = 120_000;

const cancelled = (how: string): JobEnding => ({ status: "CANCELLED", error: { code: "cancelled", message: `cancelled ${how}` } });

/**
 * Tells the batcher running a job just cancelled, through the capacity ledger it reads anyway,
 * to abort the job's GPU call: one PutItem, and only where aborting stops the GPU (elsewhere the
 * call runs on and its result is fenced out). `before` is the job as read before the cancel: a
 * later attempt on the ended one means a batcher claimed it in between.
 */
async function stopItsCall(deps: CancelDeps, before: JobRecord, ended: JobRecord): Promise<void> {
  const wasRunning = before.status === "RUNNING" || ended.attempt !== before.attempt;
  const component = ended.component === undefined ? undefined : deps.catalog.components.get(ended.component);
  if (!wasRunning || !component || !stopsWhenCallerLeaves(component.engine)) return;
  try {
    await deps.ledger.markCancelled(component.name, ended.job_id, new Date(deps.clock.now().getTime() + CANCEL_MARK_TTL_MS));
  } catch (error) {
    // The cancel stands: the call then runs to its end and its result is not written.
    deps.logger.warn("could not mark a running job cancelled; its GPU call runs to its end", { jobId: ended.job_id, error: String(error) });
  }
}

/**
 * Cancels a job of the caller's tenant. A queued job never reaches the GPU; a running one is
 * cancelled at once and its result, if the GPU returns it, is not written (the write is fenced
 * on RUNNING); its batcher aborts its call where that stops the GPU (stopItsCall). Cancelling a
 * cancelled job again is a no-op; a finished one is a conflict.
 */
export async function cancelJob(deps: CancelDeps & BatchControlDeps, tenant: string, jobId: string, how = "by request"): Promise<JobRecord> {
  const job = await getJob(deps, tenant, jobId);
  if (job.status === "CANCELLED") return job;
  if (isTerminal(job.status)) throw alreadyFinished(job);
  const ended = await deps.jobs.endUnfinished(jobId, cancelled(how), deps.clock.now());
  const current = ended ?? (await getJob(deps, tenant, jobId));
  if (!ended) {
    if (current.status === "CANCELLED") return current;
    throw new ConflictError(`job ${jobId} finished as ${current.status} before it could be cancelled`);
  }
  await Promise.all([stopItsCall(deps, job, ended), leftTheLine(job, ended) && leaveLine(deps, [ended])]);
  await notifyJob(deps, ended);
  if (ended.batch_id !== undefined) await reportBatchProgress(deps, ended.batch_id);
  return ended;
}

/**
 * Cancels several jobs of the caller's tenant, all or none: every job is checked first, so that
 * an unknown, foreign or finished one among them cancels nothing.
 */
export async function cancelJobs(deps: CancelDeps & BatchControlDeps, tenant: string, jobIds: readonly string[], how = "by request"): Promise<JobRecord[]> {
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

/**
 * Cancels every job of a batch that has not finished; the finished ones keep their results. An
 * OpenAI batch goes `cancelling` first, and on to finalize once its last job ended.
 */
export async function cancelBatch(deps: CancelDeps & BatchControlDeps, tenant: string, batchId: string): Promise<BatchView> {
  let batch = await getBatch(deps, tenant, batchId);
  if (batch.kind === "openai") {
    const at = epochSeconds(deps.clock.now());
    batch = (await deps.batches.transition(batchId, fromStatusesOf("cancelling"), changeTo(batch, "cancelling", at))) ?? (await getBatch(deps, tenant, batchId));
    // Past cancelling already (finalizing, or ended): nothing is left to cancel.
    if (batch.status !== "cancelling") return toBatchView(batch, await batchCounts(deps, batch));
  }
  await endBatchJobs(deps, batchId, cancelled("with its batch"));
  await reportBatchProgress(deps, batchId);
  return toBatchView(batch, await batchCounts(deps, batch));
}

/** Ends every unfinished job of a batch as `ending` (cancelled, or expired with its batch): each leaves its line, its call is stopped, its subscribers told. */
export async function endBatchJobs(deps: CancelDeps, batchId: string, ending: JobEnding): Promise<number> {
  const at = deps.clock.now();
  let cursor: string | undefined;
  let count = 0;
  do {
    const page = await deps.jobs.listByBatch(batchId, { limit: 1000, cursor });
    const unfinished = page.items.filter((j) => !isTerminal(j.status));
    const left: JobRecord[] = [];
    await Promise.all(
      unfinished.map(async (before) => {
        const ended = await deps.jobs.endUnfinished(before.job_id, ending, at);
        if (!ended) return;
        count++;
        if (leftTheLine(before, ended)) left.push(ended);
        await stopItsCall(deps, before, ended);
        await notifyJob(deps, ended);
      }),
    );
    await leaveLine(deps, left);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return count;
}

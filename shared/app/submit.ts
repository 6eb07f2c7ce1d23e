import { parseBatchFile, type BatchLine } from "../core/batch-file.ts";
import { countStatuses, type BatchRecord, type RequestCounts } from "../core/batches.ts";
import { ConflictError, RetryableError } from "../core/errors.ts";
import { epochSeconds, SWEEP_SHARD } from "../core/openai-batches.ts";
import { expiryOf, newJobRecord, toJobMessage } from "../core/job-records.ts";
import type { JobRecord } from "../core/jobs.ts";
import { laneOf, type Lane } from "../core/lanes.ts";
import type { QueueBoard, QueueEstimate, QueueTicket } from "../core/queue-position.ts";
import type { RouteCatalog } from "../core/routes.ts";
import { checkJob } from "../core/submission.ts";
import type { Clock, IdempotencyStore, Ids, JobQueue, JobStore, BatchStore, QueueBoardStore, Sleep } from "../ports.ts";
import type { Logger } from "./logger.ts";
import { chargeSubmission, type QuotaDeps } from "./quotas.ts";
import { retryWhileUnavailable, STORE_RETRY_DELAYS_MS } from "./store-retry.ts";
import { estimateOf, leaveLine } from "./waiting.ts";

export type SubmitDeps = QuotaDeps & {
  readonly catalog: RouteCatalog;
  readonly jobs: JobStore;
  readonly queue: JobQueue;
  readonly idempotency: IdempotencyStore;
  readonly batches: BatchStore;
  readonly queueBoard: QueueBoardStore;
  readonly clock: Clock;
  readonly ids: Ids;
  readonly sleep: Sleep;
  readonly logger: Logger;
};

/** `queue`: where a job just queued stands in line, from `board`, the board its ticket came with. */
export type Submitted = { readonly job: JobRecord; readonly created: boolean; readonly queue?: QueueEstimate | undefined; readonly board?: QueueBoard | undefined };

/**
 * Accepts one job: validate (nothing is written for a rejected job), charge its quota, take its
 * ticket in line, record it QUEUED, enqueue it. The same idempotency key from the same tenant
 * gives back the first job.
 */
export async function submitJob(deps: SubmitDeps, tenant: string, raw: unknown, options: { readonly subscribing?: boolean } = {}): Promise<Submitted> {
  const now = deps.clock.now();
  const checked = checkJob(raw, deps.catalog, now);
  let jobId = deps.ids.job();
  const key = checked.request.idempotency_key;
  if (key !== undefined) {
    const boundId = await deps.idempotency.bind(tenant, key, jobId, expiryOf(now, checked.route.retention_days));
    if (boundId !== jobId) {
      const existing = await deps.jobs.get(boundId);
      if (existing) return replayed(deps, existing);
      // The first submission stopped between binding the key and writing its job: finish it.
      jobId = boundId;
    }
  }
  const lane = laneOf(checked.request.priority, false, checked.route.lanes.interactive_min_priority);
  let refund: () => Promise<void>;
  let board: QueueBoard;
  try {
    refund = await chargeSubmission(deps, tenant, [{ slot: { job_id: jobId }, prompt_tokens: checked.promptTokens, max_tokens: checked.request.max_tokens }], "interactive");
    board = await deps.queueBoard.takeTickets(checked.route.name, lane, 1).catch(async (error: unknown) => {
      await refund();
      throw error;
    });
  } catch (error) {
    if (key !== undefined) await deps.idempotency.unbind(tenant, key, jobId);
    throw error;
  }
  const job = newJobRecord(checked, { jobId, tenant, now, ticket: { lane, ticket: board.submitted[lane] }, subscribing: options.subscribing });
  try {
    // Tried again while the store is down: the put is conditional and takes a try that landed
    // unanswered (its answer lost, or its store killed mid-request) for its own, so it stays one job.
    await retryWhileUnavailable(deps.sleep, () => deps.jobs.create([job]));
  } catch (error) {
    // The winner (the same idempotency key's other submission) holds this very slot and charge,
    // keyed by the job id: refunding them would take them from it.
    const winner = error instanceof ConflictError ? await deps.jobs.get(jobId) : undefined;
    if (winner) {
      await leaveLine(deps, [job]);
      return { job: winner, created: false };
    }
    // Down past every try, the put may have landed all the same: the job is failed (a no-op where
    // it is absent) before its slot, charge and ticket are given back. One that could not be
    // failed keeps them: a retry with its idempotency key finds it QUEUED and queues it (replayed).
    const { left } = await failAll(deps, [job], "submission_failed", "the job could not be stored; submit it again", []);
    if (left.length === 0) await Promise.all([refund(), leaveLine(deps, [job])]);
    throw error;
  }
  await enqueueLanesOrFail(deps, [{ job, lane }]);
  return { job, created: true, queue: estimateOf(deps, job, board), board };
}

/**
 * The job a repeated idempotency key names. One still QUEUED that no batcher ever claimed is sent
 * to its queue again: the first submission may have stopped between storing and queueing it
 * (killed, out of time, or its store down past every try), and nothing else would ever send it.
 * Where it was queued already, a second message is what SQS's at-least-once delivery allows
 * anyway (claims are fenced by attempt); it costs one SendMessage per such repeat.
 */
async function replayed(deps: SubmitDeps, job: JobRecord): Promise<Submitted> {
  if (job.status === "QUEUED" && job.first_claimed_at === undefined) await enqueueOrFail(deps, [job]);
  return { job, created: false };
}

export type SubmittedBatch = { readonly batch: BatchRecord; readonly request_counts: RequestCounts };

/**
 * A JSON-lines batch is in the sweep's index from its creation until its jobs are all queued: one
 * its submit left part way (killed, or its stores down past every try, between writing jobs and
 * queueing them) is found by the sweep this long after its creation, longer than any submit runs.
 */
export const BATCH_QUEUED_CHECK_SECONDS = 120;

/**
 * Accepts a JSON-lines batch file: every line is validated before anything is written; then the
 * batch record, its jobs and their messages, and the mark that they were all queued (one write
 * per file). The record carries the sweep's mark until then: the sweep queues what a submit
 * stopped part way left QUEUED without a message (batch-sweep.ts).
 */
export async function submitBatch(deps: SubmitDeps, tenant: string, text: string, metadata?: Record<string, string>): Promise<SubmittedBatch> {
  const now = deps.clock.now();
  const lines = parseBatchFile(text, deps.catalog, now);
  const batchId = deps.ids.batch();
  const batch: BatchRecord = {
    batch_id: batchId,
    tenant,
    created_at: now.toISOString(),
    total: lines.length,
    models: modelsOf(lines),
    metadata,
    expires_at: expiryOf(now, retentionOf(lines)),
    sweep: SWEEP_SHARD,
    sweep_at: epochSeconds(now) + BATCH_QUEUED_CHECK_SECONDS,
  };
  const jobs = await storeBatchJobs(deps, tenant, batchId, lines, { now, jobId: () => deps.ids.job(), beforeJobs: () => deps.batches.create(batch) });
  await enqueueOrFail(deps, jobs);
  // Queued whether or not the mark is written, and not tried again (the answer would wait): one
  // left unwritten costs the sweep a look, and a second message for the jobs still waiting then
  // (claims are fenced by attempt).
  await deps.batches.markQueued(batchId).catch((error: unknown) => {
    deps.logger.warn("a batch's jobs are queued, but could not be marked so; the sweep sends their messages again", { batchId, error: String(error) });
  });
  return { batch, request_counts: countStatuses(jobs.length, jobs.map((j) => j.status)) };
}

export const modelsOf = (lines: readonly BatchLine[]) => [...new Set(lines.map((l) => l.job.route.name))];
export const retentionOf = (lines: readonly BatchLine[]) => Math.max(...lines.map((l) => l.job.route.retention_days));

/**
 * Stores a batch's validated lines as QUEUED jobs: charges the tenant's quota, takes their
 * tickets in line (file order), runs `beforeJobs` (the JSON-lines form creates its batch record
 * there), writes the jobs. If a write fails, the stored jobs are failed and the rest given back,
 * and the error is thrown. Enqueueing them is the caller's next step (enqueueOrFail).
 */
export async function storeBatchJobs(
  deps: SubmitDeps,
  tenant: string,
  batchId: string,
  lines: readonly BatchLine[],
  options: { readonly now: Date; readonly jobId: (line: BatchLine) => string; readonly beforeJobs?: () => Promise<void> },
): Promise<JobRecord[]> {
  const laneOfLine = (l: BatchLine) => laneOf(l.job.request.priority, true, l.job.route.lanes.interactive_min_priority);
  const slotted = lines.map((l) => ({ l, slot: { job_id: options.jobId(l), batch: { batch_id: batchId, line: l.line } } }));
  const refund = await chargeSubmission(deps, tenant, slotted.map(({ l, slot }) => ({ slot, prompt_tokens: l.job.promptTokens, max_tokens: l.job.request.max_tokens })), "batch");
  const tickets = await ticketsInLine(deps, lines.map((l) => ({ route: l.job.route.name, lane: laneOfLine(l) }))).catch(async (error: unknown) => {
    await refund();
    throw error;
  });
  const jobs = slotted.map(({ l, slot }, i) =>
    newJobRecord(l.job, { jobId: slot.job_id, tenant, now: options.now, batch: { batch_id: batchId, custom_id: l.custom_id, batch_line: l.line }, ticket: tickets[i] }),
  );
  try {
    await options.beforeJobs?.();
    await deps.jobs.create(jobs);
  } catch (error) {
    // The jobs that were stored are failed (their slots come back as they end); every slot is
    // given back again here, which changes nothing for those already back.
    await failAll(deps, jobs, "submission_failed", "the batch could not be stored; submit it again");
    await Promise.all([refund(), leaveLine(deps, jobs)]);
    throw error;
  }
  return jobs;
}

/** Enqueues jobs by route and lane; if SQS refuses, the jobs are failed rather than left QUEUED forever. */
export async function enqueueOrFail(deps: SubmitDeps, jobs: readonly JobRecord[]): Promise<void> {
  await enqueueLanesOrFail(deps, jobs.map((job) => ({ job, lane: job.lane ?? "batch" })));
}

async function enqueueLanesOrFail(deps: SubmitDeps, entries: readonly { readonly job: JobRecord; readonly lane: Lane }[]): Promise<void> {
  const jobs = entries.map((e) => e.job);
  const byQueue = Map.groupBy(entries, (e) => `${e.lane}|${e.job.model}`);
  try {
    await Promise.all(
      [...byQueue.values()].map((group) => {
        const [first] = group;
        return first ? deps.queue.enqueue(first.job.model, group.map((e) => toJobMessage(e.job)), first.lane) : undefined;
      }),
    );
  } catch (error) {
    await leaveLine(deps, (await failAll(deps, jobs, "enqueue_failed", "the job could not be queued; submit it again")).ended);
    throw error instanceof RetryableError ? error : new RetryableError("unavailable", "the queue is unavailable; try again", error);
  }
}

/**
 * Fails every job that was stored and not finished, trying again after each delay while the store
 * fails (a job stored but neither queued nor failed would wait forever); a job that is absent is
 * left as it is. Returns those it ended, and those it could not settle.
 */
async function failAll(
  deps: SubmitDeps,
  jobs: readonly JobRecord[],
  code: string,
  message: string,
  delaysMs: readonly number[] = STORE_RETRY_DELAYS_MS,
): Promise<{ ended: JobRecord[]; left: readonly JobRecord[] }> {
  const at = deps.clock.now();
  const ended: JobRecord[] = [];
  let left = jobs;
  for (const delayMs of [0, ...delaysMs]) {
    if (left.length === 0) break;
    if (delayMs > 0) await deps.sleep(delayMs);
    const tries = await Promise.allSettled(left.map((j) => deps.jobs.endUnfinished(j.job_id, { status: "FAILED", error: { code, message } }, at)));
    ended.push(...tries.flatMap((r) => (r.status === "fulfilled" && r.value !== undefined ? [r.value] : [])));
    left = left.filter((_, i) => tries[i]?.status === "rejected");
  }
  if (left.length > 0) deps.logger.error("jobs perhaps stored, neither queued nor failed", { jobIds: left.map((j) => j.job_id) });
  return { ended, left };
}

/**
 * Tickets for jobs in submit order: one take per route and lane, each job its number in it. A
 * batch file's lines take their lane's tickets together, so its jobs stand in line in file order.
 */
async function ticketsInLine(deps: SubmitDeps, jobs: readonly { readonly route: string; readonly lane: Lane }[]): Promise<QueueTicket[]> {
  const groups = Map.groupBy(jobs.map((job, i) => ({ ...job, i })), (j) => `${j.route}|${j.lane}`);
  const tickets: QueueTicket[] = [];
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const [first] = group;
      if (!first) return;
      const last = (await deps.queueBoard.takeTickets(first.route, first.lane, group.length)).submitted[first.lane];
      group.forEach((j, k) => (tickets[j.i] = { lane: j.lane, ticket: last - group.length + 1 + k }));
    }),
  );
  return tickets;
}

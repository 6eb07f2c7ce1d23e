import { isTerminal, versionOf, type JobRecord } from "../../core/jobs.ts";
import { decideWarmingWait } from "../../core/warming-bound.ts";
import { notifyJob } from "../notify.ts";
import { giveBackSlot } from "../quotas.ts";
import { withWarmingSince } from "./messages.ts";
import type { JobEnding } from "../../ports.ts";
import type { BatcherDeps, Pending, RunHandle } from "./types.ts";

/**
 * The job waits in the queue for its component, saying why; a job this run had claimed is QUEUED
 * again. The wait is bounded (warming-bound.ts): past the job's deadline it expires, past the
 * route's max_warming_wait_seconds it fails (component_not_ready), and its message is done.
 * Waiting costs what it did (the job's write, its event, a SendMessage and a DeleteMessage); the
 * bound's clock rides in the new message's body.
 */
export async function waitInQueue(
  deps: BatcherDeps,
  pending: Pending,
  wait: { readonly delaySeconds: number; readonly waitingFor: string },
  run: RunHandle,
  claimedAttempt?: number,
): Promise<void> {
  const now = deps.clock.now();
  const since = pending.message.warming_since;
  const decision = decideWarmingWait({
    nowMs: now.getTime(),
    warmingSinceMs: since === undefined ? undefined : Date.parse(since),
    deadlineMs: pending.item.deadlineMs,
    delaySeconds: wait.delaySeconds,
    maxWaitSeconds: run.maxWarmingWaitSeconds,
    waitingFor: wait.waitingFor,
  });
  if (decision.kind !== "wait") {
    await endUnstarted(deps, pending, decision.kind === "expire" ? expiredEnding(pending) : { status: "FAILED", error: { code: decision.code, message: decision.reason } }, run);
    return run.settle(pending, { kind: "done" });
  }
  const job = await deps.jobs.noteWaiting(pending.message.job_id, "warming", claimedAttempt);
  // Finished meanwhile, or held by a later attempt that has its own message: nothing to wait for.
  if (!job) return run.settle(pending, { kind: "done" });
  await notifyJob(deps, job);
  // Its job.waiting events carry the version it was watched at, which this note moved past: its clients would drop them.
  if ((job.subscriptions ?? 1) > 0) await rewatch(deps, job);
  const body = withWarmingSince(pending.message, new Date(decision.warmingSinceMs).toISOString());
  await run.settle(pending, { kind: "requeue", delaySeconds: decision.delaySeconds, body });
}

export function expiredEnding(pending: Pending): JobEnding {
  const deadline = pending.message.deadline ?? "";
  return { status: "EXPIRED", error: { code: "deadline_exceeded", message: `deadline ${deadline} passed before the job could start` } };
}

/** Ends a job that has not run to an outcome (expired, or its component never became ready), and says so. */
export async function endUnstarted(deps: BatcherDeps, pending: Pending, ending: JobEnding, run: RunHandle): Promise<void> {
  const job = await deps.jobs.endUnfinished(pending.message.job_id, ending, deps.clock.now());
  if (!job) return renotifyFinished(deps, pending.message.job_id);
  // Ended before it ever ran: it leaves the line now. One that ran once was counted out then.
  if (job.attempt === 0) run.departed(pending.source.lane);
  if (job.batch_id !== undefined) run.touched(job.batch_id);
  await notifyJob(deps, job);
}

/**
 * A redelivered message whose job already finished: give its slot back (again: its ender may have
 * been killed between the job's last write and the give-back, which is a no-op if it was not),
 * say so again, then let the message go.
 */
export async function renotifyFinished(deps: BatcherDeps, jobId: string): Promise<void> {
  const job = await deps.jobs.get(jobId);
  if (!job) {
    deps.logger.warn("message for a job that does not exist; dropping it", { jobId });
    return;
  }
  if (isTerminal(job.status)) await Promise.all([giveBackSlot(deps.usage, job), notifyJob(deps, job)]);
}

/** Best effort, as estimates are: a board that cannot be written leaves the job's job.waiting events to be dropped until it runs. */
async function rewatch(deps: BatcherDeps, job: JobRecord): Promise<void> {
  try {
    await deps.queueBoard.rewatchAt(job.model, job.job_id, versionOf(job));
  } catch (error) {
    deps.logger.warn("could not move a waiting job's watch on to its version; its clients drop its job.waiting events until it runs", { jobId: job.job_id, error: String(error) });
  }
}

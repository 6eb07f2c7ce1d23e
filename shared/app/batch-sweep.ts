import type { BatchRecord } from "../core/batches.ts";
import { changeTo, epochSeconds } from "../core/openai-batches.ts";
import type { WebhookOutbox } from "../ports.ts";
import { announceEnd } from "./batch-events.ts";
import { finalizeIfDone, type BatchControlDeps } from "./batch-progress.ts";
import { endBatchJobs, type CancelDeps } from "./cancel.ts";
import type { Logger } from "./logger.ts";
import { batchCounts, jobsOfBatch } from "./queries.ts";
import { enqueueOrFail, type SubmitDeps } from "./submit.ts";

export type SweepDeps = CancelDeps & BatchControlDeps & SubmitDeps & { readonly webhooks: WebhookOutbox; readonly logger: Logger };

/** Batches one sweep takes on: the rest are still due at the next (a minute later). */
export const SWEEP_LIMIT = 100;

export type SweepReport = { readonly expired: number; readonly resent: number; readonly failed: number; readonly requeued: number };

/**
 * The minute's sweep of open OpenAI batches that are due (the sparse sweep index): an
 * in-progress batch past its window has its unfinished jobs end EXPIRED (`batch_expired`) and
 * goes to finalize as `expired`; a batch still validating at its window's end failed; a cancel or
 * finalize that went stale (its message lost) is carried on. Each step is a conditional
 * transition, so a sweep that overlaps another, or a batcher, changes nothing twice.
 */
export async function sweepBatches(deps: SweepDeps, limit = SWEEP_LIMIT): Promise<SweepReport> {
  const now = epochSeconds(deps.clock.now());
  const due = await deps.batches.listDue(now, limit);
  const report = { expired: 0, resent: 0, failed: 0, requeued: 0 };
  for (const batch of due) {
    try {
      const what = await sweepOne(deps, batch, now);
      if (what) report[what]++;
    } catch (error) {
      deps.logger.error("sweeping a batch failed; the next sweep tries again", { batchId: batch.batch_id, error: String(error) });
    }
  }
  return report;
}

async function sweepOne(deps: SweepDeps, batch: BatchRecord, now: number): Promise<keyof SweepReport | undefined> {
  if (batch.kind !== "openai") return queueWhatWasLeft(deps, batch);
  switch (batch.status) {
    case "in_progress": {
      if ((batch.window_expires_at ?? Number.POSITIVE_INFINITY) > now) return undefined;
      await endBatchJobs(deps, batch.batch_id, { status: "EXPIRED", error: { code: "batch_expired", message: "the batch's 24 h completion window passed before this request ran" } });
      const moved = await deps.batches.transition(batch.batch_id, ["in_progress"], changeTo(batch, "finalizing", now, { outcome: "expired" }));
      if (moved) await deps.batchControl.send({ step: "finalize", batch_id: batch.batch_id });
      return moved ? "expired" : undefined;
    }
    case "validating": {
      const failed = await deps.batches.transition(batch.batch_id, ["validating"], changeTo(batch, "failed", now, {
        errors: { object: "list", data: [{ code: "batch_expired", message: "the input file was not validated within the completion window", param: null, line: null }] },
      }));
      if (failed) await announceEnd(deps, failed);
      return failed ? "failed" : undefined;
    }
    case "cancelling":
      // The cancel stopped part-way: end what is left, and finalize once nothing runs.
      await endBatchJobs(deps, batch.batch_id, { status: "CANCELLED", error: { code: "cancelled", message: "cancelled with its batch" } });
      return (await finalizeIfDone(deps, batch, await batchCounts(deps, batch))) ? "resent" : undefined;
    case "finalizing":
      await deps.batchControl.send({ step: "finalize", batch_id: batch.batch_id });
      return "resent";
    default:
      return undefined;
  }
}

/**
 * A JSON-lines batch whose submit never marked its jobs queued (submit.ts): its jobs still QUEUED
 * that no batcher ever claimed are sent to their queues (or FAILED if SQS refuses), then it is
 * marked. A job whose message was sent after all gets a second one, which SQS's at-least-once
 * delivery allows anyway: its claims are fenced by attempt, so its result is written once. Costs
 * a read of every job of the batch, once, and only for such a batch.
 */
async function queueWhatWasLeft(deps: SweepDeps, batch: BatchRecord): Promise<"requeued" | undefined> {
  const left = (await jobsOfBatch(deps, batch.batch_id)).filter((j) => j.status === "QUEUED" && j.first_claimed_at === undefined);
  if (left.length > 0) {
    deps.logger.warn("a batch's submit stopped before queueing these jobs; queueing them", { batchId: batch.batch_id, jobs: left.length });
    await enqueueOrFail(deps, left);
  }
  await deps.batches.markQueued(batch.batch_id);
  return left.length > 0 ? "requeued" : undefined;
}

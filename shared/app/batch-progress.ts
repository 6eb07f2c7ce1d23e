import { batchTopic } from "../core/events.ts";
import { changeTo, epochSeconds, type OpenAIBatchStatus } from "../core/openai-batches.ts";
import type { BatchRecord, RequestCounts } from "../core/batches.ts";
import type { BatchControlQueue, BatchStore, BatchTally, Clock, JobStore } from "../ports.ts";
import { notifyTopics, type NotifyDeps } from "./notify.ts";
import { batchCounts } from "./queries.ts";

export type BatchControlDeps = { readonly batches: BatchStore; readonly tally: BatchTally; readonly batchControl: BatchControlQueue; readonly clock: Clock };

/**
 * Tells a batch's subscribers its counts by status; an OpenAI batch whose last job just ended
 * goes on to finalize (finalizeIfDone).
 */
export async function reportBatchProgress(deps: NotifyDeps & BatchControlDeps & { readonly jobs: JobStore }, batchId: string): Promise<void> {
  const batch = await deps.batches.get(batchId);
  if (!batch) return;
  const counts = await batchCounts(deps, batch);
  await notifyTopics(deps, [batchTopic(batchId)], { type: "batch.progress", batch_id: batchId, request_counts: counts });
  await finalizeIfDone(deps, batch, counts);
}

/**
 * Once no job of an OpenAI batch is queued or running, moves it to finalizing (a conditional
 * write: of the batchers, cancels and dead letters that see its last job end, one wins) and the
 * winner sends the finalize step. Whether jobs are left is read from the jobs, not from `total`:
 * a batch cancelled while its file was validated has a total of 0.
 */
export async function finalizeIfDone(deps: BatchControlDeps, batch: BatchRecord, counts: RequestCounts): Promise<boolean> {
  const from: readonly OpenAIBatchStatus[] = ["in_progress", "cancelling"];
  if (batch.kind !== "openai" || !from.includes(batch.status ?? "validating") || counts.queued + counts.running > 0) return false;
  const at = epochSeconds(deps.clock.now());
  const outcome = batch.status === "cancelling" ? "cancelled" : "completed";
  const moved = await deps.batches.transition(batch.batch_id, [batch.status ?? "in_progress"], changeTo(batch, "finalizing", at, { outcome }));
  // If this send is lost, the sweep sends it again once the step is stale (STALE_STEP_SECONDS).
  if (moved) await deps.batchControl.send({ step: "finalize", batch_id: batch.batch_id });
  return moved !== undefined;
}

import { batchTopic } from "../core/events.ts";
import type { BatchStore, JobStore } from "../ports.ts";
import { notifyTopics, type NotifyDeps } from "./notify.ts";
import { batchCounts } from "./queries.ts";

/** Tells a batch's subscribers its counts by status. */
export async function reportBatchProgress(deps: NotifyDeps & { readonly jobs: JobStore; readonly batches: BatchStore }, batchId: string): Promise<void> {
  const batch = await deps.batches.get(batchId);
  if (!batch) return;
  const counts = await batchCounts(deps, batch);
  await notifyTopics(deps, [batchTopic(batchId)], { type: "batch.progress", batch_id: batchId, request_counts: counts });
}

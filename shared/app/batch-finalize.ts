import { countStatuses } from "../core/batches.ts";
import { RetryableError } from "../core/errors.ts";
import { isTerminal } from "../core/jobs.ts";
import { batchOutputLines } from "../core/openai-batch-output.ts";
import { changeTo, epochSeconds, isTerminalStatus } from "../core/openai-batches.ts";
import type { BatchStore, JobStore, WebhookOutbox } from "../ports.ts";
import { announceEnd } from "./batch-events.ts";
import type { Logger } from "./logger.ts";
import { writeBatchFile, type OutputFileDeps } from "./output-files.ts";
import { jobsOfBatch } from "./queries.ts";

export type FinalizeDeps = OutputFileDeps & {
  readonly batches: BatchStore;
  readonly jobs: JobStore;
  readonly webhooks: WebhookOutbox;
  readonly logger: Logger;
};

/**
 * The finalize step of an OpenAI batch in `finalizing`: writes its output and error files from
 * its jobs, in input order, then `finalizing → completed | cancelled | expired` with their ids and
 * the final counts, and puts its webhook event on the outbox. Run again, it writes the same files
 * under the same ids, its transition finds the batch ended, and the event (same id) goes again.
 */
export async function finalizeBatch(deps: FinalizeDeps, batchId: string): Promise<void> {
  const batch = await deps.batches.get(batchId);
  if (batch?.kind !== "openai" || batch.status === undefined) {
    deps.logger.error("finalize of a batch that is not an OpenAI batch", { batchId });
    return;
  }
  if (isTerminalStatus(batch.status)) return announceEnd(deps, batch);
  // Only a batch whose last job ended is moved to finalizing (finalizeIfDone, the sweep).
  if (batch.status !== "finalizing") return;
  const jobs = await jobsOfBatch(deps, batchId);
  const unfinished = jobs.filter((j) => !isTerminal(j.status)).length;
  // Not reached through finalizeIfDone; were it, SQS gives the step again after its visibility timeout.
  if (unfinished > 0) throw new RetryableError("unavailable", `batch ${batchId}: ${unfinished} jobs have not ended yet`);
  const endpoint = batch.endpoint ?? "/v1/chat/completions";
  const lines = batchOutputLines(endpoint, jobs);
  const [outputFileId, errorFileId] = await Promise.all([
    lines.output.length > 0 ? writeBatchFile(deps, batch, "output", lines.output) : null,
    lines.errors.length > 0 ? writeBatchFile(deps, batch, "error", lines.errors) : null,
  ]);
  const to = batch.outcome ?? "completed";
  const ended = await deps.batches.transition(batchId, ["finalizing"], changeTo(batch, to, epochSeconds(deps.clock.now()), {
    output_file_id: outputFileId,
    error_file_id: errorFileId,
    request_counts: countStatuses(jobs.length, jobs.map((j) => j.status)),
  }));
  const now = ended ?? (await deps.batches.get(batchId));
  if (now) await announceEnd(deps, now);
}

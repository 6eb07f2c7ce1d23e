import type { BatchLine } from "../core/batch-file.ts";
import type { BatchRecord } from "../core/batches.ts";
import { BatchlineError } from "../core/errors.ts";
import { isTerminal, type JobRecord } from "../core/jobs.ts";
import { parseOpenAIBatchFile } from "../core/openai-batch-file.ts";
import { changeTo, derivedHex, epochSeconds, type BatchLineError } from "../core/openai-batches.ts";
import type { BlobStore, FileStore, WebhookOutbox } from "../ports.ts";
import { announceEnd } from "./batch-events.ts";
import { finalizeIfDone, type BatchControlDeps } from "./batch-progress.ts";
import { endBatchJobs, type CancelDeps } from "./cancel.ts";
import type { Logger } from "./logger.ts";
import { batchCounts, jobsOfBatch } from "./queries.ts";
import { enqueueOrFail, modelsOf, storeBatchJobs, type SubmitDeps } from "./submit.ts";

export type IngestDeps = SubmitDeps & CancelDeps & BatchControlDeps & {
  readonly files: FileStore;
  readonly blobs: BlobStore;
  readonly webhooks: WebhookOutbox;
  readonly logger: Logger;
};

/** A line's job id, from its batch and line: an ingest run again finds the jobs a first run stored. */
export const ingestJobId = (batchId: string, line: number) => `job_${derivedHex("ingest", batchId, String(line))}`;

/**
 * The ingest step of an OpenAI batch: reads its input file, validates every line (any error: the
 * batch is `failed` with `errors`, no job queued), stores and enqueues the jobs, then `validating
 * → in_progress`. A message delivered again after the transition finds the batch past
 * validating and does nothing (but say a failure again); one delivered again before it finds
 * the jobs stored and enqueues those still queued.
 */
export async function ingestBatch(deps: IngestDeps, batchId: string): Promise<void> {
  const batch = await deps.batches.get(batchId);
  if (batch?.kind !== "openai") {
    deps.logger.error("ingest of a batch that is not an OpenAI batch", { batchId });
    return;
  }
  if (batch.status === "failed") return announceEnd(deps, batch);
  // Cancelled while its ingest waited: nothing was queued, and it is finalized as cancelled.
  if (batch.status === "cancelling") return void (await finalizeIfDone(deps, batch, await batchCounts(deps, batch)));
  if (batch.status !== "validating") return;

  const text = await inputText(deps, batch);
  if (typeof text !== "string") return fail(deps, batch, [text]);
  const parsed = parseOpenAIBatchFile(text, batch.endpoint ?? "/v1/chat/completions", deps.catalog, deps.clock.now());
  if (parsed.errors.length > 0) return fail(deps, batch, parsed.errors);

  const jobs = await storeOnce(deps, batch, parsed.lines);
  if (!jobs) return;
  try {
    await enqueueOrFail(deps, jobs.filter((j) => j.status === "QUEUED"));
  } catch (error) {
    // Its jobs are FAILED (enqueue_failed): the batch goes on and its error file says so.
    deps.logger.warn("the jobs of a batch could not be queued", { batchId, error: String(error) });
  }
  const at = epochSeconds(deps.clock.now());
  const moved = await deps.batches.transition(batchId, ["validating"], changeTo(batch, "in_progress", at, { total: parsed.lines.length, models: modelsOf(parsed.lines) }));
  if (!moved) {
    // Cancelled while its jobs were being stored: the cancel may have missed them.
    await endBatchJobs(deps, batchId, { status: "CANCELLED", error: { code: "cancelled", message: "cancelled with its batch" } });
  }
  const now = moved ?? (await deps.batches.get(batchId));
  if (now) await finalizeIfDone(deps, now, await batchCounts(deps, now));
}

/** The input file's text, or the line error that says why there is none. */
async function inputText(deps: IngestDeps, batch: BatchRecord): Promise<string | BatchLineError> {
  const file = batch.input_file_id === undefined ? undefined : await deps.files.get(batch.input_file_id);
  const bytes = file && file.tenant === batch.tenant ? await deps.blobs.get(file.storage_key) : undefined;
  if (!bytes) return { code: "invalid_file", message: `input file ${batch.input_file_id ?? ""} is gone`, param: "input_file_id", line: null };
  return new TextDecoder().decode(bytes);
}

/**
 * Stores the lines as jobs, unless an earlier run did: then the jobs it stored. A refusal (a
 * quota, a failed write) fails the batch: undefined.
 */
async function storeOnce(deps: IngestDeps, batch: BatchRecord, lines: readonly BatchLine[]): Promise<JobRecord[] | undefined> {
  const [first] = lines;
  if (first && (await deps.jobs.get(ingestJobId(batch.batch_id, first.line)))) return storedJobs(deps, batch.batch_id);
  try {
    return await storeBatchJobs(deps, batch.tenant, batch.batch_id, lines, { now: deps.clock.now(), jobId: (l) => ingestJobId(batch.batch_id, l.line) });
  } catch (error) {
    if (!(error instanceof BatchlineError) || error.retryable) deps.logger.warn("a batch's jobs could not be stored", { batchId: batch.batch_id, error: String(error) });
    const message = error instanceof BatchlineError ? error.message : "the batch's requests could not be stored; create it again";
    await fail(deps, batch, [{ code: error instanceof BatchlineError ? error.code : "internal", message, param: null, line: null }]);
    return undefined;
  }
}

/** A batch's jobs stored by an earlier ingest that are not finished yet. */
async function storedJobs(deps: IngestDeps, batchId: string): Promise<JobRecord[]> {
  return (await jobsOfBatch(deps, batchId)).filter((j) => !isTerminal(j.status));
}

async function fail(deps: IngestDeps, batch: BatchRecord, errors: readonly BatchLineError[]): Promise<void> {
  const failed = await deps.batches.transition(batch.batch_id, ["validating"], changeTo(batch, "failed", epochSeconds(deps.clock.now()), { errors: { object: "list", data: errors } }));
  if (failed) await announceEnd(deps, failed);
}

import type { BatchRecord } from "../core/batches.ts";
import { ValidationError } from "../core/errors.ts";
import { expiryOf } from "../core/job-records.ts";
import { changeTo, COMPLETION_WINDOW_SECONDS, epochSeconds, parseCreateRequest, SWEEP_SHARD, toOpenAIBatch } from "../core/openai-batches.ts";
import type { RouteCatalog } from "../core/routes.ts";
import type { BatchControlQueue, BatchStore, Clock, FileStore, Ids } from "../ports.ts";
import { announceEnd } from "./batch-events.ts";
import type { WebhookOutbox } from "../ports.ts";
import { batchCounts, getBatch, type QueryDeps } from "./queries.ts";

export type CreateBatchDeps = {
  readonly catalog: RouteCatalog;
  readonly batches: BatchStore;
  readonly batchControl: BatchControlQueue;
  readonly files: FileStore;
  readonly webhooks: WebhookOutbox;
  readonly clock: Clock;
  readonly ids: Ids;
};

/**
 * Creates an OpenAI batch, `validating`, and sends its ingest step: reading and validating the
 * file takes longer than an HTTP request may (a 50,000-line file), so it happens after the answer.
 */
export async function createOpenAIBatch(deps: CreateBatchDeps, tenant: string, raw: unknown): Promise<Record<string, unknown>> {
  const request = parseCreateRequest(raw);
  const file = await deps.files.get(request.input_file_id);
  if (!file || file.tenant !== tenant) throw new ValidationError(`input_file_id: no file ${request.input_file_id}`, "input_file_id");
  if (file.purpose !== "batch") throw new ValidationError(`input_file_id: file ${file.file_id} has purpose "${file.purpose}"; a batch reads a file of purpose "batch"`, "input_file_id");
  const now = deps.clock.now();
  const windowEnd = epochSeconds(now) + COMPLETION_WINDOW_SECONDS;
  // Kept as long as the longest retention of any route: its lines' routes are not known yet.
  const retentionDays = Math.max(...[...deps.catalog.routes.values()].map((r) => r.retention_days));
  const batch: BatchRecord = {
    batch_id: deps.ids.batch(),
    tenant,
    created_at: now.toISOString(),
    total: 0,
    models: [],
    metadata: request.metadata ?? undefined,
    expires_at: expiryOf(now, retentionDays),
    kind: "openai",
    endpoint: request.endpoint,
    input_file_id: request.input_file_id,
    completion_window: "24h",
    status: "validating",
    window_expires_at: windowEnd,
    sweep: SWEEP_SHARD,
    sweep_at: windowEnd,
  };
  await deps.batches.create(batch);
  try {
    await deps.batchControl.send({ step: "ingest", batch_id: batch.batch_id });
  } catch (error) {
    // Never left validating for a day: the caller is told, and the batch says why it failed.
    const failed = await deps.batches.transition(batch.batch_id, ["validating"], changeTo(batch, "failed", epochSeconds(deps.clock.now()), {
      errors: { object: "list", data: [{ code: "unavailable", message: "the batch could not be queued for validation; create it again", param: null, line: null }] },
    }));
    if (failed) await announceEnd(deps, failed);
    throw error;
  }
  return toOpenAIBatch(batch, { total: 0, queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 });
}

/** A batch of the tenant as OpenAI's batch object; one that is not finished counts its jobs. */
export async function describeOpenAIBatch(deps: QueryDeps, tenant: string, batchId: string): Promise<Record<string, unknown>> {
  return openAIView(deps, await getBatch(deps, tenant, batchId));
}

async function openAIView(deps: QueryDeps, batch: BatchRecord): Promise<Record<string, unknown>> {
  // A finished OpenAI batch answers the counts it kept at finalize, without reading its jobs.
  const counts = batch.request_counts ?? (await batchCounts(deps, batch));
  return toOpenAIBatch(batch, counts);
}

export type OpenAIList = { readonly object: "list"; readonly data: readonly Record<string, unknown>[]; readonly first_id: string | null; readonly last_id: string | null; readonly has_more: boolean; readonly next_cursor: string | null };

/** OpenAI's list (`after`, `limit` 1..100), newest first; the cursor of the older paging is answered too. */
export async function listOpenAIBatches(deps: QueryDeps, tenant: string, query: Readonly<Record<string, string | undefined>> | undefined): Promise<OpenAIList> {
  const limit = query?.limit === undefined ? 20 : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new ValidationError("limit: must be an integer between 1 and 100", "limit");
  // The older paging's `cursor` is now the last batch id of the page before, as `after` is.
  const after = query?.after || query?.cursor || undefined;
  const param = query?.after ? "after" : "cursor";
  if (after !== undefined && after.length > 256) throw new ValidationError(`${param}: names no batch`, param);
  // One more than asked: whether there is more is then known, not guessed from a full page.
  const page = await deps.batches.listByTenant(tenant, { limit: limit + 1, after });
  const shown = page.items.slice(0, limit);
  const data = await Promise.all(shown.map((b) => openAIView(deps, b)));
  const hasMore = page.items.length > limit;
  const last = shown.at(-1);
  return {
    object: "list",
    data,
    first_id: shown[0]?.batch_id ?? null,
    last_id: last?.batch_id ?? null,
    has_more: hasMore,
    next_cursor: hasMore && last ? last.batch_id : null,
  };
}

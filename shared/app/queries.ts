import { batchStatus, countStatuses, type BatchRecord, type RequestCounts } from "../core/batches.ts";
import { NotFoundError } from "../core/errors.ts";
import { breakdownOf, type JobRecord } from "../core/jobs.ts";
import type { BatchStore, BatchTally, JobStore, Page, PageRequest } from "../ports.ts";

export type QueryDeps = { readonly jobs: JobStore; readonly batches: BatchStore; readonly tally: BatchTally };

/**
 * The ids this API hands out are short (a prefix and 32 hex digits). A much longer one names
 * nothing, and is not looked up: DynamoDB refuses a key over 2 KB with an error of its own.
 */
const MAX_ID_LENGTH = 256;
const mayExist = (id: string) => id.length > 0 && id.length <= MAX_ID_LENGTH;

/** A job of the caller's tenant. Another tenant's job is "not found", never "forbidden". */
export async function getJob(deps: Pick<QueryDeps, "jobs">, tenant: string, jobId: string): Promise<JobRecord> {
  return ofTenant(tenant, jobId, mayExist(jobId) ? await deps.jobs.get(jobId) : undefined);
}

/** A job of the caller's tenant, read by counting a subscribe to it (JobStore.noteSubscribed): after its subscription is stored. */
export async function subscribedJob(deps: Pick<QueryDeps, "jobs">, tenant: string, jobId: string): Promise<JobRecord> {
  return ofTenant(tenant, jobId, mayExist(jobId) ? await deps.jobs.noteSubscribed(jobId) : undefined);
}

function ofTenant(tenant: string, jobId: string, job: JobRecord | undefined): JobRecord {
  if (!job || job.tenant !== tenant) throw new NotFoundError(`job ${jobId} not found`);
  return job;
}

export async function getBatch(deps: QueryDeps, tenant: string, batchId: string): Promise<BatchRecord> {
  const batch = mayExist(batchId) ? await deps.batches.get(batchId) : undefined;
  if (!batch || batch.tenant !== tenant) throw new NotFoundError(`batch ${batchId} not found`);
  return batch;
}

/** Every job of a batch, read page by page, in line order. */
export async function jobsOfBatch(deps: Pick<QueryDeps, "jobs">, batchId: string): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.jobs.listByBatch(batchId, { limit: 1000, cursor });
    jobs.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return jobs;
}

/**
 * The batch's counts by status, from its tally (a read per 100 lines); a batch stored before
 * tallies were kept is counted by reading every job of it.
 */
export async function batchCounts(deps: Pick<QueryDeps, "jobs" | "tally">, batch: BatchRecord): Promise<RequestCounts> {
  return (await deps.tally.countsOf(batch)) ?? countStatuses(batch.total, (await jobsOfBatch(deps, batch.batch_id)).map((j) => j.status));
}

export type BatchView = {
  readonly batch_id: string;
  readonly status: "in_progress" | "completed";
  readonly created_at: string;
  readonly models: readonly string[];
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  readonly request_counts: RequestCounts;
};

export async function describeBatch(deps: QueryDeps, tenant: string, batchId: string): Promise<BatchView> {
  const batch = await getBatch(deps, tenant, batchId);
  return toBatchView(batch, await batchCounts(deps, batch));
}

export function toBatchView(batch: BatchRecord, counts: RequestCounts): BatchView {
  return {
    batch_id: batch.batch_id,
    status: batchStatus(counts),
    created_at: batch.created_at,
    models: batch.models,
    metadata: batch.metadata,
    request_counts: counts,
  };
}

export async function listBatches(deps: QueryDeps, tenant: string, page: PageRequest): Promise<Page<BatchView>> {
  const batches = await deps.batches.listByTenant(tenant, page);
  const items = await Promise.all(batches.items.map(async (b) => toBatchView(b, await batchCounts(deps, b))));
  return { items, cursor: batches.cursor };
}

export type BatchResultLine = {
  readonly custom_id: string | undefined;
  readonly job_id: string;
  readonly status: JobRecord["status"];
  readonly result?: JobRecord["result"];
  readonly error?: JobRecord["error"];
  readonly breakdown?: ReturnType<typeof breakdownOf>;
};

/** One page of a batch's results, in the order of the batch file's lines. */
export async function batchResults(deps: QueryDeps, tenant: string, batchId: string, page: PageRequest): Promise<Page<BatchResultLine>> {
  await getBatch(deps, tenant, batchId);
  const jobs = await deps.jobs.listByBatch(batchId, page);
  return {
    items: jobs.items.map((j) => ({ custom_id: j.custom_id, job_id: j.job_id, status: j.status, result: j.result, error: j.error, breakdown: breakdownOf(j) })),
    cursor: jobs.cursor,
  };
}

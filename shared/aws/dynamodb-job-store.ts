import { isDeepStrictEqual } from "node:util";
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { Progress } from "../core/continuation.ts";
import { ConflictError } from "../core/errors.ts";
import { jobBreakdownSchema } from "../core/job-breakdown.ts";
import { jobMessageSchema, jobStatuses, type JobRecord } from "../core/jobs.ts";
import { LANES } from "../core/lanes.ts";
import type { JobEnding, JobOutcome, JobStore, Page, PageRequest, GpuBatchPlacement, RecentJob } from "../ports.ts";
import { decodeCursor, encodeCursor, rejectForeignCursor } from "./cursor.ts";
import { batchWrite, conditional, DynamoDbTable, sdk } from "./dynamodb-table.ts";

/** A job that has not reached a terminal state: the only kind a claim, a note or an ending may touch. */
const UNFINISHED = "#status = :queued OR #status = :running";
const UNFINISHED_VALUES = { ":queued": "QUEUED", ":running": "RUNNING" };

/** An item of the jobs table: what newJobRecord writes, and what claims, finishes and endings add. */
export const jobItem = z.object({
  job_id: z.string(),
  tenant: z.string(),
  status: z.enum(jobStatuses),
  model: z.string(),
  // The job's request is the very one its queue message carries.
  request: jobMessageSchema.shape.request,
  prompt_tokens: z.number(),
  max_tokens: z.number().optional(),
  priority: z.number(),
  deadline: z.string().optional(),
  idempotency_key: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  batch_id: z.string().optional(),
  custom_id: z.string().optional(),
  batch_line: z.number().optional(),
  lane: z.enum(LANES).optional(),
  ticket: z.number().optional(),
  attempt: z.number(),
  created_at: z.string(),
  started_at: z.string().optional(),
  first_claimed_at: z.string().optional(),
  finished_at: z.string().optional(),
  gpu_batch_id: z.string().optional(),
  gpu_batch_size: z.number().optional(),
  component: z.string().optional(),
  result: z.object({ text: z.string(), prompt_tokens: z.number(), completion_tokens: z.number(), finish_reason: z.enum(["length", "stop"]) }).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  waiting_reason: z.string().optional(),
  breakdown: jobBreakdownSchema.optional(),
  progress: z.object({ text: z.string(), tokens: z.number(), calls: z.number(), extra_prefill_tokens: z.number() }).optional(),
  version: z.number().optional(),
  subscriptions: z.number().optional(),
  expires_at: z.number(),
}) satisfies z.ZodType<JobRecord>;

/** What the model index projects, and a trace reads. */
// A job stored before max_tokens was kept at the top level has none in the index: it is left out of traces.
const recentJobItem = z.object({ created_at: z.string(), prompt_tokens: z.number(), max_tokens: z.number().optional(), lane: z.enum(LANES).optional() });
const recentJobOf = (item: z.infer<typeof recentJobItem>): RecentJob[] =>
  item.max_tokens === undefined ? [] : [{ created_at: item.created_at, prompt_tokens: item.prompt_tokens, max_tokens: item.max_tokens, lane: item.lane }];

export class DynamoDbJobStore extends DynamoDbTable implements JobStore {

  async create(jobs: readonly JobRecord[]): Promise<void> {
    const [only] = jobs;
    if (jobs.length === 1 && only) {
      const put = await conditional(`create job ${only.job_id}`, () =>
        this.client.send(new PutCommand({ TableName: this.tableName, Item: only, ConditionExpression: "attribute_not_exists(job_id)" })),
      );
      if (put === undefined && !(await this.#ownWrite(only.job_id, (job) => job.created_at === only.created_at && job.tenant === only.tenant))) {
        throw new ConflictError(`job ${only.job_id} already exists`);
      }
      return;
    }
    // Fresh random ids cannot collide, and BatchWrite has no conditions: 25 jobs per call.
    await batchWrite(this.client, this.tableName, jobs.map((job) => ({ PutRequest: { Item: job } })));
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const out = await sdk(`get job ${jobId}`, () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { job_id: jobId }, ConsistentRead: true })),
    );
    return out.Item && this.#decode(out.Item);
  }

  claim(jobId: string, placement: GpuBatchPlacement, at: Date): Promise<JobRecord | undefined> {
    return this.#transition(`claim job ${jobId}`, jobId, {
      // The first claim's time stays: the queue wait is measured to it (docs/cost.md).
      update: "SET #status = :running, started_at = :at, first_claimed_at = if_not_exists(first_claimed_at, :at), gpu_batch_id = :gpuBatch, gpu_batch_size = :size, component = :component ADD attempt :one REMOVE waiting_reason",
      condition: UNFINISHED,
      values: { ...UNFINISHED_VALUES, ":at": at.toISOString(), ":gpuBatch": placement.gpu_batch_id, ":size": placement.gpu_batch_size, ":component": placement.component, ":one": 1 },
    });
  }

  finish(jobId: string, attempt: number, outcome: JobOutcome, at: Date): Promise<JobRecord | undefined> {
    const detail = outcome.status === "SUCCEEDED" ? { name: "result", value: outcome.result } : { name: "error", value: outcome.error };
    const breakdown = outcome.breakdown === undefined ? {} : { ":breakdown": outcome.breakdown };
    return this.#transition(`finish job ${jobId}`, jobId, {
      // A long generation's text so far is in the result now: kept twice it would double the item.
      update: `SET #status = :status, #detail = :detail, finished_at = :at${outcome.breakdown === undefined ? "" : ", breakdown = :breakdown"} REMOVE progress`,
      // The fence: only the latest attempt, still running, may write the outcome.
      condition: "#status = :running AND attempt = :attempt",
      names: { "#detail": detail.name },
      values: { ":running": "RUNNING", ":status": outcome.status, ":detail": detail.value, ":at": at.toISOString(), ":attempt": attempt, ...breakdown },
      mine: (job) => job.status === outcome.status && job.attempt === attempt && job.finished_at === at.toISOString(),
    });
  }

  async saveProgress(jobId: string, attempt: number, progress: Progress, fromTokens: number): Promise<boolean> {
    const extending = fromTokens === 0 ? "attribute_not_exists(progress)" : "progress.#tokens = :from";
    const out = await conditional(`store the progress of job ${jobId}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { job_id: jobId },
          // No version step: the job's state does not change, and no event goes out for it.
          UpdateExpression: "SET progress = :progress",
          ConditionExpression: `#status = :running AND attempt = :attempt AND ${extending}`,
          ExpressionAttributeNames: { "#status": "status", ...(fromTokens === 0 ? {} : { "#tokens": "tokens" }) },
          ExpressionAttributeValues: { ":running": "RUNNING", ":attempt": attempt, ":progress": progress, ...(fromTokens === 0 ? {} : { ":from": fromTokens }) },
        }),
      ),
    );
    if (out) return true;
    // Refused: by a later attempt or an ending, or by this very write retried after its answer was lost.
    const current = await this.get(jobId);
    return current?.status === "RUNNING" && current.attempt === attempt && isDeepStrictEqual(current.progress, progress);
  }

  async noteSubscribed(jobId: string): Promise<JobRecord | undefined> {
    const out = await conditional(`count a subscribe of job ${jobId}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { job_id: jobId },
          // No version step: the job's state does not change. A retry after a lost answer counts
          // twice, which only makes a batcher look its subscribers up once more.
          UpdateExpression: "ADD subscriptions :one",
          ConditionExpression: "attribute_exists(job_id)",
          ExpressionAttributeValues: { ":one": 1 },
          ReturnValues: "ALL_NEW",
        }),
      ),
    );
    return out?.Attributes && this.#decode(out.Attributes);
  }

  noteWaiting(jobId: string, reason: string, claimedAttempt?: number): Promise<JobRecord | undefined> {
    if (claimedAttempt === undefined) {
      return this.#transition(`note why job ${jobId} waits`, jobId, { update: "SET waiting_reason = :reason", condition: UNFINISHED, values: { ...UNFINISHED_VALUES, ":reason": reason } });
    }
    // Fenced like a finish: a later attempt that claimed the job meanwhile keeps it RUNNING. The
    // attempt is given back: waiting for a copy is not a try, and attempts drive the retry backoff.
    return this.#transition(`put job ${jobId} back to wait`, jobId, {
      update: "SET #status = :queued, waiting_reason = :reason ADD attempt :back",
      condition: "#status = :running AND attempt = :attempt",
      values: { ":running": "RUNNING", ":queued": "QUEUED", ":reason": reason, ":attempt": claimedAttempt, ":back": -1 },
      mine: (job) => job.status === "QUEUED" && job.waiting_reason === reason && job.attempt === claimedAttempt - 1,
    });
  }

  endUnfinished(jobId: string, ending: JobEnding, at: Date): Promise<JobRecord | undefined> {
    return this.#transition(`end job ${jobId}`, jobId, {
      update: "SET #status = :ending, #error = :error, finished_at = :at",
      condition: UNFINISHED,
      names: { "#error": "error" },
      values: { ...UNFINISHED_VALUES, ":ending": ending.status, ":error": ending.error, ":at": at.toISOString() },
      mine: (job) => job.status === ending.status && job.error?.code === ending.error.code && job.finished_at === at.toISOString(),
    });
  }

  /**
   * A conditional update of one job; the job as it now is, or undefined when the condition failed.
   * `mine` recognizes the update's own effect: when the first try was written but its answer was
   * lost (a 500 or a throttling error after the write), the SDK's retry fails the condition on
   * that very write, which is then still this caller's (to notify, to give the quota slot back).
   */
  async #transition(
    what: string,
    jobId: string,
    change: { update: string; condition: string; names?: Record<string, string>; values: Record<string, unknown>; mine?: (job: JobRecord) => boolean },
  ): Promise<JobRecord | undefined> {
    const out = await conditional(what, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { job_id: jobId },
          UpdateExpression: movingVersionOn(change.update),
          ConditionExpression: change.condition,
          ExpressionAttributeNames: { "#status": "status", ...change.names },
          ExpressionAttributeValues: { ...change.values, ":versionStep": 1 },
          ReturnValues: "ALL_NEW",
        }),
      ),
    );
    if (out) return out.Attributes && this.#decode(out.Attributes);
    return change.mine && (await this.#ownWrite(jobId, change.mine));
  }

  /** After a failed condition: the record, when it is this caller's own write whose answer was lost. */
  async #ownWrite(jobId: string, mine: (job: JobRecord) => boolean): Promise<JobRecord | undefined> {
    const current = await this.get(jobId);
    return current && mine(current) ? current : undefined;
  }

  async listByBatch(batchId: string, page: PageRequest): Promise<Page<JobRecord>> {
    const out = await sdk(`list jobs of batch ${batchId}`, () =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: "batch-index",
          KeyConditionExpression: "batch_id = :batch",
          ExpressionAttributeValues: { ":batch": batchId },
          Limit: page.limit,
          ExclusiveStartKey: decodeCursor(page.cursor),
        }),
      ).catch(rejectForeignCursor(page.cursor)),
    );
    return { items: (out.Items ?? []).map((item) => this.#decode(item)), cursor: encodeCursor(out.LastEvaluatedKey) };
  }

  async listRecentByModel(model: string, since: Date, limit: number): Promise<RecentJob[]> {
    const jobs: RecentJob[] = [];
    let start: Record<string, unknown> | undefined;
    // Newest first, so that a bound keeps the most recent; given back oldest first.
    do {
      const out = await sdk(`list recent jobs of model ${model}`, () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: "model-index",
            KeyConditionExpression: "model = :model AND created_at >= :since",
            ExpressionAttributeValues: { ":model": model, ":since": since.toISOString() },
            ProjectionExpression: "created_at, prompt_tokens, max_tokens, lane",
            ScanIndexForward: false,
            Limit: limit - jobs.length,
            ExclusiveStartKey: start,
          }),
        ),
      );
      jobs.push(...(out.Items ?? []).flatMap((item) => recentJobOf(this.decode(recentJobItem, item, `job of model ${model}`))));
      start = out.LastEvaluatedKey;
    } while (start && jobs.length < limit);
    return jobs.reverse();
  }

  #decode(item: Record<string, unknown>): JobRecord {
    return this.decode(jobItem, withGpuBatchNames(item), `job ${String(item.job_id)}`);
  }
}

/**
 * Every change of a job moves its version on in the very write that makes it: no request of its
 * own, and a write whose condition fails moves nothing. ADD on a record stored before versions
 * starts from 0. An update may have one ADD clause only, so the step joins one it has.
 */
function movingVersionOn(update: string): string {
  return /\bADD\b/.test(update) ? update.replace(/\bADD\b/, "ADD version :versionStep,") : `${update} ADD version :versionStep`;
}

/** Items claimed before the GPU batch had its name carry it as window_id and window_size. */
function withGpuBatchNames(item: Record<string, unknown>): Record<string, unknown> {
  const { window_id, window_size, ...rest } = item;
  return window_id === undefined ? item : { gpu_batch_id: window_id, gpu_batch_size: window_size, ...rest };
}

import type { JobStatus } from "./jobs.ts";
import type { BatchErrors, FinalOutcome, OpenAIBatchStatus, OpenAIEndpoint, StatusTimestamps } from "./openai-batches.ts";

/** A user's JSON-lines submission (never a "GPU batch": that is what the batcher sends to the GPU together). */
export type BatchRecord = {
  readonly batch_id: string;
  readonly tenant: string;
  readonly created_at: string;
  readonly total: number;
  readonly models: readonly string[];
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** Epoch seconds: DynamoDB's TTL deletes the record then (retention, not OpenAI's expires_at). */
  readonly expires_at: number;
} & Partial<OpenAIBatchFields>;

/**
 * What an OpenAI batch (POST /v1/batches with a JSON body) adds; a record without `kind` is a
 * JSON-lines batch from before, read as one.
 */
export type OpenAIBatchFields = StatusTimestamps & {
  readonly kind: "openai" | "jsonl";
  readonly endpoint: OpenAIEndpoint;
  readonly input_file_id: string;
  readonly completion_window: "24h";
  readonly status: OpenAIBatchStatus;
  /** OpenAI's expires_at (created + 24 h): the record's own expires_at is its TTL. */
  readonly window_expires_at: number;
  /** What finalize ends the batch as, set when it enters finalizing. */
  readonly outcome: FinalOutcome;
  readonly output_file_id: string | null;
  readonly error_file_id: string | null;
  readonly errors: BatchErrors;
  /** The counts at finalize: a finished batch answers them without reading its jobs. */
  readonly request_counts: RequestCounts;
  /** The sweep's sparse index (SWEEP_SHARD, when to look next): only open batches carry them. */
  readonly sweep: string;
  readonly sweep_at: number;
};

export type RequestCounts = {
  readonly total: number;
  readonly queued: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly expired: number;
};

export function countStatuses(total: number, statuses: Iterable<JobStatus>): RequestCounts {
  const counts = { total, queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 };
  for (const status of statuses) counts[status.toLowerCase() as Lowercase<JobStatus>]++;
  return counts;
}

/** `completed` once every job of the batch reached a terminal state. */
export function batchStatus(counts: RequestCounts): "in_progress" | "completed" {
  const finished = counts.succeeded + counts.failed + counts.cancelled + counts.expired;
  return finished >= counts.total ? "completed" : "in_progress";
}

/** The lines of one chunk of a batch that started, and those that ended, by terminal status (lower case, as in RequestCounts). */
export type ChunkTally = {
  readonly slots: number;
  readonly running: ReadonlySet<number>;
  readonly ended: Readonly<Record<EndedCount, ReadonlySet<number>>>;
};
export type EndedCount = "succeeded" | "failed" | "cancelled" | "expired";
export const endedCounts: readonly EndedCount[] = ["succeeded", "failed", "cancelled", "expired"];

/**
 * A batch's counts from its chunks' sets: a line counts once in the status it ended with, as
 * running if it started and has not ended (a job waiting to run again after a failed attempt
 * included), and as queued otherwise.
 */
export function countChunks(total: number, chunks: readonly ChunkTally[]): RequestCounts {
  const counts = { total, queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 };
  for (const chunk of chunks) {
    const ended = new Set<number>();
    for (const status of endedCounts) {
      counts[status] += chunk.ended[status].size;
      for (const line of chunk.ended[status]) ended.add(line);
    }
    counts.running += [...chunk.running].filter((line) => !ended.has(line)).length;
  }
  counts.queued = Math.max(0, total - counts.running - endedCounts.reduce((sum, s) => sum + counts[s], 0));
  return counts;
}

import type { JobStatus } from "./jobs.ts";

/** A user's JSON-lines submission (never a "GPU batch": that is what the batcher sends to the GPU together). */
export type BatchRecord = {
  readonly batch_id: string;
  readonly tenant: string;
  readonly created_at: string;
  readonly total: number;
  readonly models: readonly string[];
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  readonly expires_at: number;
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

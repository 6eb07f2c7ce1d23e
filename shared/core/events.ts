import { versionOf, type JobRecord, type JobStatus, type JobView } from "./jobs.ts";
import type { RequestCounts } from "./batches.ts";
import type { QueueEstimate } from "./queue-position.ts";

/** Events the server pushes over the WebSocket (docs/design.md, wire conventions). */
export type JobEventType = `job.${Lowercase<JobStatus>}`;

export type ServerEvent =
  | { readonly type: JobEventType; readonly job: JobView; readonly request_id?: string | undefined }
  | TokenEvent
  | WaitingEvent
  | { readonly type: "batch.progress"; readonly batch_id: string; readonly request_counts: RequestCounts }
  | { readonly type: "subscribed"; readonly job_ids: readonly string[]; readonly batch_id?: string | undefined }
  | { readonly type: "error"; readonly error: { readonly code: string; readonly message: string; readonly field?: string | undefined }; readonly request_id?: string | undefined };

/**
 * A waiting job's place in line and estimated start and finish, sent when they move
 * (docs/queue-position.md). `version` is the job's version while it waits; `index`, the time the
 * estimate was recorded as told (epoch ms), grows with each job.waiting of that version, as the
 * queue board's conditional write lets at most one through a second per job.
 */
export type WaitingEvent = { readonly type: "job.waiting"; readonly job_id: string; readonly version: number; readonly index: number; readonly queue: QueueEstimate };

export function waitingEvent(job: Pick<JobRecord, "job_id" | "version">, queue: QueueEstimate, toldAt: Date): WaitingEvent {
  return { type: "job.waiting", job_id: job.job_id, version: versionOf(job), index: toldAt.getTime(), queue };
}

/**
 * Text of a streamed job as it is generated (README, WebSocket events). `version` is the job's
 * version as the attempt claimed it; `index` numbers the events of one attempt from 0; `tokens`
 * counts the tokens sent so far, this event's included. A retried job streams again from the
 * start: its first event says `restarted`, and the text of earlier attempts is void.
 */
export type TokenEvent = {
  readonly type: "job.token";
  readonly job_id: string;
  readonly version: number;
  readonly attempt: number;
  readonly index: number;
  readonly text: string;
  readonly tokens: number;
  readonly restarted?: true | undefined;
};

/** A frame of a streamed job's text as its event: the first frame of a later attempt says the stream restarted. */
export function tokenEvent(claimed: Pick<JobRecord, "job_id" | "attempt" | "version">, frame: { readonly index: number; readonly text: string; readonly tokens: number }): TokenEvent {
  const { job_id, attempt } = claimed;
  const event: TokenEvent = { type: "job.token", job_id, version: versionOf(claimed), attempt, index: frame.index, text: frame.text, tokens: frame.tokens };
  return frame.index === 0 && attempt > 1 ? { ...event, restarted: true } : event;
}

export function jobEvent(job: JobView, requestId?: string): ServerEvent {
  const type = `job.${job.status.toLowerCase()}` as JobEventType;
  return requestId === undefined ? { type, job } : { type, job, request_id: requestId };
}

export const jobTopic = (jobId: string): string => `job#${jobId}`;
export const batchTopic = (batchId: string): string => `batch#${batchId}`;

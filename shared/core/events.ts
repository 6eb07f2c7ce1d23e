import type { JobStatus, JobView } from "./jobs.ts";
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

/** A waiting job's place in line and estimated start and finish, sent when they move (docs/queue-position.md). */
export type WaitingEvent = { readonly type: "job.waiting"; readonly job_id: string; readonly queue: QueueEstimate };

/**
 * Text of a streamed job as it is generated (README, WebSocket events). `index` numbers the events
 * of one attempt from 0; `tokens` counts the tokens sent so far, this event's included. A retried
 * job streams again from the start: its first event says `restarted`, and the text of earlier
 * attempts is void.
 */
export type TokenEvent = {
  readonly type: "job.token";
  readonly job_id: string;
  readonly attempt: number;
  readonly index: number;
  readonly text: string;
  readonly tokens: number;
  readonly restarted?: true | undefined;
};

/** A frame of a streamed job's text as its event: the first frame of a later attempt says the stream restarted. */
export function tokenEvent(jobId: string, attempt: number, frame: { readonly index: number; readonly text: string; readonly tokens: number }): TokenEvent {
  const event: TokenEvent = { type: "job.token", job_id: jobId, attempt, index: frame.index, text: frame.text, tokens: frame.tokens };
  return frame.index === 0 && attempt > 1 ? { ...event, restarted: true } : event;
}

export function jobEvent(job: JobView, requestId?: string): ServerEvent {
  const type = `job.${job.status.toLowerCase()}` as JobEventType;
  return requestId === undefined ? { type, job } : { type, job, request_id: requestId };
}

export const jobTopic = (jobId: string): string => `job#${jobId}`;
export const batchTopic = (batchId: string): string => `batch#${batchId}`;

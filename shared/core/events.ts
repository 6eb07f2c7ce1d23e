import type { JobStatus, JobView } from "./jobs.ts";
import type { RequestCounts } from "./batches.ts";

/** Events the server pushes over the WebSocket (docs/design.md, wire conventions). */
export type JobEventType = `job.${Lowercase<JobStatus>}`;

export type ServerEvent =
  | { readonly type: JobEventType; readonly job: JobView; readonly request_id?: string | undefined }
  | { readonly type: "batch.progress"; readonly batch_id: string; readonly request_counts: RequestCounts }
  | { readonly type: "subscribed"; readonly job_ids: readonly string[]; readonly batch_id?: string | undefined }
  | { readonly type: "error"; readonly error: { readonly code: string; readonly message: string; readonly field?: string | undefined }; readonly request_id?: string | undefined };

export function jobEvent(job: JobView, requestId?: string): ServerEvent {
  const type = `job.${job.status.toLowerCase()}` as JobEventType;
  return requestId === undefined ? { type, job } : { type, job, request_id: requestId };
}

export const jobTopic = (jobId: string): string => `job#${jobId}`;
export const batchTopic = (batchId: string): string => `batch#${batchId}`;

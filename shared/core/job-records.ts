import type { JobMessage, JobRecord } from "./jobs.ts";
import type { QueueTicket } from "./queue-position.ts";
import { DEFAULT_PRIORITY, type CheckedJob } from "./submission.ts";

export type NewJobContext = {
  readonly jobId: string;
  readonly tenant: string;
  readonly now: Date;
  readonly batch?: { readonly batch_id: string; readonly custom_id: string; readonly batch_line: number } | undefined;
  readonly ticket?: QueueTicket | undefined;
  /** Submitted by a client that subscribes to it next (a WebSocket submit): counted as one subscribe from the start. */
  readonly subscribing?: boolean | undefined;
};

/** Epoch seconds at which a record made now expires under a route's retention. */
export function expiryOf(now: Date, retentionDays: number): number {
  return Math.floor(now.getTime() / 1000) + retentionDays * 86_400;
}

/** The QUEUED record of a checked job. */
export function newJobRecord(checked: CheckedJob, context: NewJobContext): JobRecord {
  const { request, route } = checked;
  return {
    job_id: context.jobId,
    tenant: context.tenant,
    status: "QUEUED",
    model: route.name,
    request: {
      prompt: request.prompt,
      messages: request.messages,
      max_tokens: request.max_tokens,
      temperature: request.temperature,
      top_p: request.top_p,
      stop: request.stop,
      seed: request.seed,
      // Only a streamed job carries the field: every other job's record and message stay as they were.
      stream: request.stream || undefined,
    },
    prompt_tokens: checked.promptTokens,
    max_tokens: request.max_tokens,
    priority: request.priority ?? DEFAULT_PRIORITY,
    deadline: request.deadline,
    idempotency_key: request.idempotency_key,
    metadata: request.metadata,
    batch_id: context.batch?.batch_id,
    custom_id: context.batch?.custom_id,
    batch_line: context.batch?.batch_line,
    lane: context.ticket?.lane,
    ticket: context.ticket?.ticket,
    attempt: 0,
    version: 1,
    subscriptions: context.subscribing ? 1 : 0,
    created_at: context.now.toISOString(),
    expires_at: expiryOf(context.now, route.retention_days),
  };
}

/** The queue message of a job: everything the batcher needs to pack and run it without a read. */
export function toJobMessage(job: JobRecord): JobMessage {
  return {
    version: 1,
    job_id: job.job_id,
    tenant: job.tenant,
    model: job.model,
    prompt_tokens: job.prompt_tokens,
    priority: job.priority,
    deadline: job.deadline,
    submitted_at: job.created_at,
    request: {
      prompt: job.request.prompt,
      messages: job.request.messages ? [...job.request.messages] : undefined,
      max_tokens: job.request.max_tokens,
      temperature: job.request.temperature,
      top_p: job.request.top_p,
      stop: typeof job.request.stop === "string" || job.request.stop === undefined ? job.request.stop : [...job.request.stop],
      seed: job.request.seed,
      stream: job.request.stream,
    },
  };
}

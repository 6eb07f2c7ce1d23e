import { z } from "zod";
import { offGpuBreakdown, type JobBreakdown, type OffGpuBreakdown } from "./job-breakdown.ts";
import type { Progress } from "./continuation.ts";
import type { Lane } from "./lanes.ts";
import type { ChatMessage } from "./prompt.ts";
import type { QueueEstimate } from "./queue-position.ts";

/** Job statuses (docs/design.md, wire conventions). */
export const jobStatuses = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"] as const;
export type JobStatus = (typeof jobStatuses)[number];
export const terminalStatuses: ReadonlySet<JobStatus> = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"]);
export const isTerminal = (status: JobStatus): boolean => terminalStatuses.has(status);

/** A type error message that says "is required" when the field is absent. */
const expected = (rule: string) => (issue: { input?: unknown }) => (issue.input === undefined ? "is required" : rule);

const chatMessage = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});

/**
 * A job as a client submits it (POST /v1/jobs, WebSocket submit, one line of a batch file).
 * Route-specific limits (max_tokens, prompt length) are checked afterwards against the route.
 */
export const jobRequestSchema = z
  .strictObject({
    model: z.string({ error: expected("must be a string naming a model route") }).min(1, "must not be empty"),
    prompt: z.string({ error: "must be a string" }).min(1, "must not be empty").optional(),
    // The chat template puts the system text into the first user turn: without one the model would get nothing to answer.
    messages: z.array(chatMessage, { error: "must be an array of {role, content}" }).min(1, "must not be empty")
      .refine((ms) => ms.some((m) => m.role === "user"), "must include a user message").optional(),
    max_tokens: z.number({ error: expected("must be an integer") }).int("must be an integer").positive("must be at least 1"),
    temperature: z.number({ error: "must be a number" }).min(0, "must be between 0 and 2").max(2, "must be between 0 and 2").optional(),
    top_p: z.number({ error: "must be a number" }).gt(0, "must be in (0, 1]").max(1, "must be in (0, 1]").optional(),
    stop: z.union([z.string(), z.array(z.string()).max(4, "at most 4 stop sequences")], { error: "must be a string or an array of strings" }).optional(),
    seed: z.number({ error: "must be an integer" }).int("must be an integer").optional(),
    priority: z.number({ error: "must be an integer" }).int("must be an integer").min(0, "must be between 0 and 9").max(9, "must be between 0 and 9").optional(),
    deadline: z.iso.datetime({ offset: true, error: "must be an ISO 8601 date-time" }).optional(),
    idempotency_key: z.string({ error: "must be a string" }).min(1, "must not be empty").max(128, "at most 128 characters").optional(),
    metadata: z.record(z.string(), z.string(), { error: "must be an object of string values" })
      .refine((m) => Object.keys(m).length <= 16, "at most 16 keys").optional(),
    // OpenAI's name: the job's subscribers get its text as job.token events while it generates.
    stream: z.boolean({ error: "must be true or false" }).optional(),
  })
  .superRefine((job, ctx) => {
    if ((job.prompt === undefined) === (job.messages === undefined)) {
      ctx.addIssue({ code: "custom", path: ["prompt"], message: "give exactly one of prompt or messages" });
    }
  });

export type JobRequest = z.infer<typeof jobRequestSchema>;

/** What the engine needs to run a job, as kept on the job record and in the queue message. */
export type GenerationRequest = {
  readonly prompt?: string | undefined;
  readonly messages?: readonly ChatMessage[] | undefined;
  readonly max_tokens: number;
  readonly temperature?: number | undefined;
  readonly top_p?: number | undefined;
  readonly stop?: string | readonly string[] | undefined;
  readonly seed?: number | undefined;
  /** Send the text to the job's subscribers as it is generated (job.token events). */
  readonly stream?: boolean | undefined;
};

export type JobResult = {
  readonly text: string;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly finish_reason: "length" | "stop";
};

export type JobFailure = { readonly code: string; readonly message: string };

/** A job as stored in the jobs table. Timestamps are ISO strings; expires_at is epoch seconds (TTL). */
export type JobRecord = {
  readonly job_id: string;
  readonly tenant: string;
  readonly status: JobStatus;
  readonly model: string;
  readonly request: GenerationRequest;
  readonly prompt_tokens: number;
  /** request.max_tokens, at the top level so that the jobs table's model-index projects it without the request. */
  readonly max_tokens?: number | undefined;
  readonly priority: number;
  readonly deadline?: string | undefined;
  readonly idempotency_key?: string | undefined;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  readonly batch_id?: string | undefined;
  readonly custom_id?: string | undefined;
  readonly batch_line?: number | undefined;
  /** Its lane, and its place in the lane's line (core/queue-position.ts); absent on jobs from before positions. */
  readonly lane?: Lane | undefined;
  readonly ticket?: number | undefined;
  /** Incremented each time a batcher takes the job; results are written only by the latest. */
  readonly attempt: number;
  readonly created_at: string;
  /** The last claim's time; `first_claimed_at` the first's, kept when the job is claimed again. */
  readonly started_at?: string | undefined;
  readonly first_claimed_at?: string | undefined;
  readonly finished_at?: string | undefined;
  readonly gpu_batch_id?: string | undefined;
  readonly gpu_batch_size?: number | undefined;
  readonly component?: string | undefined;
  readonly result?: JobResult | undefined;
  readonly error?: JobFailure | undefined;
  readonly waiting_reason?: string | undefined;
  /** Written with the outcome of an attempt that reached the GPU (docs/cost.md). */
  readonly breakdown?: JobBreakdown | undefined;
  /** A generation longer than one call: its text so far, stored at each call boundary (core/continuation.ts). */
  readonly progress?: Progress | undefined;
  /**
   * The job's own version: 1 when created, moved on by the very conditional write that changes
   * the job, so that its events can be ordered (README, "Ordered events"). A record stored
   * before versions has none and reads as version 0; its next write makes it 1.
   */
  readonly version?: number | undefined;
  /**
   * How many subscribes the job has had (shared/core/subscriber-lookup.ts): 0 from its creation,
   * counted by each subscribe after it stores its subscription, and answered by every write that
   * changes the job, so that an event of a job nobody subscribed to looks nobody up. A record
   * stored before the count has none, and its subscribers are looked up.
   */
  readonly subscriptions?: number | undefined;
  readonly expires_at: number;
};

/** A job's version; 0 for a record stored before versions. */
export const versionOf = (job: Pick<JobRecord, "version">): number => job.version ?? 0;

/** The SQS message for one job. Carries the request so the batcher can pack without a read. */
export const jobMessageSchema = z.strictObject({
  version: z.literal(1),
  job_id: z.string().min(1),
  tenant: z.string().min(1),
  model: z.string().min(1),
  prompt_tokens: z.number().int().positive(),
  priority: z.number().int().min(0).max(9),
  deadline: z.string().optional(),
  submitted_at: z.string(),
  /** Set when the job was first put back in the queue for a warming component: its wait is bounded from then (warming-bound.ts). */
  warming_since: z.string().optional(),
  request: z.strictObject({
    prompt: z.string().optional(),
    messages: z.array(chatMessage).optional(),
    max_tokens: z.number().int().positive(),
    temperature: z.number().optional(),
    top_p: z.number().optional(),
    stop: z.union([z.string(), z.array(z.string())]).optional(),
    seed: z.number().int().optional(),
    stream: z.boolean().optional(),
  }),
});
export type JobMessage = z.infer<typeof jobMessageSchema>;

/** The public view of a job (GET /v1/jobs/{id} and WebSocket events). */
export type JobView = {
  readonly job_id: string;
  readonly status: JobStatus;
  /** Higher for every later state of the job: a client ignores an event whose version is not above the last it saw. */
  readonly version: number;
  readonly model: string;
  readonly batch_id?: string | undefined;
  readonly custom_id?: string | undefined;
  readonly waiting_reason?: string | undefined;
  readonly result?: JobResult | undefined;
  readonly error?: JobFailure | undefined;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  readonly timings: { readonly submitted_at: string; readonly started_at?: string | undefined; readonly finished_at?: string | undefined };
  /** The jobs it reached the engine with. */
  readonly gpu_batch?: { readonly gpu_batch_id: string; readonly gpu_batch_size: number } | undefined;
  /** @deprecated The same as `gpu_batch`, under its old name; to be removed. */
  readonly window?: { readonly window_id: string; readonly window_size: number } | undefined;
  /** A waiting job's place in line and when it should start and finish. */
  readonly queue?: QueueEstimate | undefined;
  /** Where a finished job's time and cost went (docs/cost.md); absent while it is not finished. */
  readonly breakdown?: JobBreakdown | OffGpuBreakdown | undefined;
};

/**
 * A finished job's breakdown: the one stored with its GPU outcome, else, for a job that ended
 * without one, what its record says. A success always had a GPU outcome: one stored before
 * breakdowns were has none to show.
 */
export function breakdownOf(job: JobRecord): JobBreakdown | OffGpuBreakdown | undefined {
  return job.breakdown ?? (isTerminal(job.status) && job.status !== "SUCCEEDED" ? offGpuBreakdown(job) : undefined);
}

/** The public view of a job; `queue`, its estimate, shows only while it waits. */
export function toJobView(job: JobRecord, queue?: QueueEstimate): JobView {
  const breakdown = breakdownOf(job);
  return {
    job_id: job.job_id,
    status: job.status,
    version: versionOf(job),
    model: job.model,
    batch_id: job.batch_id,
    custom_id: job.custom_id,
    waiting_reason: job.waiting_reason,
    result: job.result,
    error: job.error,
    metadata: job.metadata,
    timings: { submitted_at: job.created_at, started_at: job.started_at, finished_at: job.finished_at },
    ...(job.gpu_batch_id !== undefined && job.gpu_batch_size !== undefined && {
      gpu_batch: { gpu_batch_id: job.gpu_batch_id, gpu_batch_size: job.gpu_batch_size },
      window: { window_id: job.gpu_batch_id, window_size: job.gpu_batch_size },
    }),
    ...(job.status === "QUEUED" && queue && { queue }),
    ...(breakdown && { breakdown }),
  };
}

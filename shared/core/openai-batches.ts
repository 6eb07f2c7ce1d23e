import { createHash } from "node:crypto";
import { z } from "zod";
import { ValidationError } from "./errors.ts";
import { batchStatus, type BatchRecord, type RequestCounts } from "./batches.ts";
import { toValidationError } from "./submission.ts";

/** OpenAI's batch statuses (docs/openai-compatible.md). */
export const openAIStatuses = ["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"] as const;
export type OpenAIBatchStatus = (typeof openAIStatuses)[number];
export type TerminalStatus = "failed" | "completed" | "expired" | "cancelled";
export const openAIEndpoints = ["/v1/chat/completions", "/v1/completions"] as const;
export type OpenAIEndpoint = (typeof openAIEndpoints)[number];

/** The only completion window OpenAI offers, and so the only one taken. */
export const COMPLETION_WINDOW = "24h";
export const COMPLETION_WINDOW_SECONDS = 24 * 3600;
/**
 * How long a batch may sit cancelling or finalizing before the sweep sends its finalize again: a
 * finalize message lost between a transition and its send is then sent anew.
 */
export const STALE_STEP_SECONDS = 300;

/**
 * Where each status may go. A status only moves forward: a retried step whose transition finds
 * the batch already past it does nothing.
 */
const NEXT: Readonly<Record<OpenAIBatchStatus, readonly OpenAIBatchStatus[]>> = {
  validating: ["in_progress", "failed", "cancelling"],
  in_progress: ["finalizing", "cancelling"],
  cancelling: ["finalizing"],
  finalizing: ["completed", "cancelled", "expired"],
  failed: [],
  completed: [],
  expired: [],
  cancelled: [],
};

export const canMove = (from: OpenAIBatchStatus, to: OpenAIBatchStatus): boolean => NEXT[from].includes(to);
/** The statuses a transition to `to` may start from. */
export const fromStatusesOf = (to: OpenAIBatchStatus): OpenAIBatchStatus[] => openAIStatuses.filter((s) => canMove(s, to));
export const isTerminalStatus = (status: OpenAIBatchStatus): status is TerminalStatus => NEXT[status].length === 0;

/** Its `<status>_at` field: the epoch second the batch reached it. */
export const timestampOf = (status: Exclude<OpenAIBatchStatus, "validating">) => `${status}_at` as const;
export type StatusTimestamps = { readonly [S in Exclude<OpenAIBatchStatus, "validating"> as `${S}_at`]?: number | undefined };

export type BatchLineError = { readonly code: string; readonly message: string; readonly param: string | null; readonly line: number | null };
export type BatchErrors = { readonly object: "list"; readonly data: readonly BatchLineError[] };

/** What a batch ends as once finalized: set when it enters finalizing. */
export type FinalOutcome = "completed" | "cancelled" | "expired";

/** A transition of an OpenAI batch: the new status and the fields that go with it. */
export type BatchChange = {
  readonly status: OpenAIBatchStatus;
  readonly at: number;
  readonly outcome?: FinalOutcome | undefined;
  readonly output_file_id?: string | null | undefined;
  readonly error_file_id?: string | null | undefined;
  readonly errors?: BatchErrors | undefined;
  readonly request_counts?: RequestCounts | undefined;
  /** Known once the file is read (at in_progress). */
  readonly total?: number | undefined;
  readonly models?: readonly string[] | undefined;
  /** When the sweep should look at the batch next; undefined at a terminal status (it leaves the sweep's index). */
  readonly sweep_at?: number | undefined;
};

/** The change a transition to `to` at `at` makes, with when the sweep looks next. */
export function changeTo(batch: BatchRecord, to: OpenAIBatchStatus, at: number, fields: Omit<BatchChange, "status" | "at" | "sweep_at"> = {}): BatchChange {
  const sweepAt = isTerminalStatus(to) ? undefined : to === "in_progress" || to === "validating" ? batch.window_expires_at : at + STALE_STEP_SECONDS;
  return { ...fields, status: to, at, sweep_at: sweepAt };
}

/** The record after a change, as the store writes it (the memory store and tests apply it with this). */
export function applyChange(batch: BatchRecord, change: BatchChange): BatchRecord {
  const { at, sweep_at, status, ...fields } = change;
  const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  const { sweep: _s, sweep_at: _a, ...rest } = batch;
  return {
    ...rest,
    ...defined,
    status,
    ...(status !== "validating" && { [timestampOf(status)]: at }),
    ...(sweep_at !== undefined && { sweep: SWEEP_SHARD, sweep_at }),
  };
}

/** The sweep index's one partition: only open OpenAI batches carry it (a sparse index). */
export const SWEEP_SHARD = "open";

const metadataSchema = z
  .record(z.string().max(64, "keys: at most 64 characters"), z.string({ error: "values must be strings" }).max(512, "values: at most 512 characters"), { error: "must be an object of string values" })
  .refine((m) => Object.keys(m).length <= 16, "at most 16 pairs");

const createSchema = z.strictObject({
  // The ids handed out are short: a longer one names nothing (and DynamoDB refuses keys over 2 KB).
  input_file_id: z.string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") }).min(1, "must not be empty").max(256, "names no file"),
  endpoint: z.enum(openAIEndpoints, { error: `must be one of ${openAIEndpoints.join(", ")}` }),
  completion_window: z.literal(COMPLETION_WINDOW, { error: `must be "${COMPLETION_WINDOW}"` }),
  metadata: metadataSchema.nullable().optional(),
});
export type CreateBatchRequest = z.infer<typeof createSchema>;

export function parseCreateRequest(raw: unknown): CreateBatchRequest {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ValidationError("body: must be a JSON object", "body");
  const parsed = createSchema.safeParse(raw);
  if (!parsed.success) throw toValidationError(parsed.error);
  return parsed.data;
}

/** A body that asks for an OpenAI batch: a JSON object naming its input file (anything else is a JSON-lines file). */
export function isOpenAICreate(contentType: string | undefined, body: string): boolean {
  if (!contentType?.toLowerCase().startsWith("application/json")) return false;
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && "input_file_id" in parsed;
  } catch {
    return false;
  }
}

export const epochSeconds = (at: Date): number => Math.floor(at.getTime() / 1000);

/** A stable id from its parts: a retried step names what it writes as the first try did. */
export function derivedHex(...parts: readonly string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 32);
}

/** The OpenAI batch object of any batch; a JSON-lines batch keeps its own fields beside it. */
export function toOpenAIBatch(batch: BatchRecord, counts: RequestCounts): Record<string, unknown> {
  const stamp = (s: Exclude<OpenAIBatchStatus, "validating">) => batch[timestampOf(s)] ?? null;
  const shown = batch.request_counts ?? counts;
  const finished = { total: shown.total, completed: shown.succeeded, failed: shown.failed + shown.cancelled + shown.expired };
  const common = {
    id: batch.batch_id,
    object: "batch",
    errors: batch.errors ?? null,
    completion_window: COMPLETION_WINDOW,
    expires_at: batch.window_expires_at ?? null,
    in_progress_at: stamp("in_progress"),
    finalizing_at: stamp("finalizing"),
    completed_at: stamp("completed"),
    failed_at: stamp("failed"),
    expired_at: stamp("expired"),
    cancelling_at: stamp("cancelling"),
    cancelled_at: stamp("cancelled"),
    metadata: batch.metadata ?? null,
  };
  if (batch.kind === "openai") {
    return {
      ...common,
      endpoint: batch.endpoint ?? null,
      input_file_id: batch.input_file_id ?? null,
      status: batch.status ?? "validating",
      output_file_id: batch.output_file_id ?? null,
      error_file_id: batch.error_file_id ?? null,
      created_at: epochSeconds(new Date(batch.created_at)),
      request_counts: finished,
    };
  }
  // A JSON-lines batch: its created_at stays ISO and its counts detailed, as before.
  return {
    ...common,
    endpoint: "/v1/jobs",
    input_file_id: null,
    output_file_id: null,
    error_file_id: null,
    batch_id: batch.batch_id,
    status: batchStatus(counts),
    created_at: batch.created_at,
    models: batch.models,
    // Its detailed counts keep their meaning (`failed`: jobs that failed); `completed` is OpenAI's.
    request_counts: { ...counts, completed: counts.succeeded },
  };
}

import { z } from "zod";
import { splitLines, type BatchLine } from "./batch-file.ts";
import { ValidationError } from "./errors.ts";
import type { BatchLineError, OpenAIEndpoint } from "./openai-batches.ts";
import type { RouteCatalog } from "./routes.ts";
import { checkJob, toValidationError } from "./submission.ts";

/** A file with more errors than this names the first ones: the batch record must stay under DynamoDB's 400 KB. */
export const MAX_REPORTED_ERRORS = 200;

const stringField = (i: { input?: unknown }) => (i.input === undefined ? "is required" : "must be a string");

const lineSchema = (endpoint: OpenAIEndpoint) =>
  z.strictObject({
    custom_id: z.string({ error: stringField }).min(1, "must not be empty").max(64, "at most 64 characters"),
    method: z.literal("POST", { error: 'must be "POST"' }),
    url: z.literal(endpoint, { error: `must be "${endpoint}", the batch's endpoint` }),
    body: z.record(z.string(), z.unknown(), { error: "must be a JSON object" }),
  });

/** OpenAI's content parts: text parts are taken (joined), anything else is not served here. */
const content = z.union([
  z.string(),
  z.array(z.strictObject({ type: z.literal("text", { error: 'only "text" parts are supported' }), text: z.string() })).transform((parts) => parts.map((p) => p.text).join("")),
], { error: "must be a string or an array of text parts" });

const chatBody = z.strictObject({
  model: z.unknown(),
  // OpenAI's "developer" role is its newer name for "system".
  messages: z.array(z.strictObject({ role: z.enum(["system", "developer", "user", "assistant"], { error: "must be system, developer, user or assistant" }), content, name: z.string().optional() }), {
    error: "must be an array of {role, content}",
  }).transform((ms) => ms.map((m) => ({ role: m.role === "developer" ? ("system" as const) : m.role, content: m.content }))),
  max_tokens: z.unknown().optional(),
  max_completion_tokens: z.unknown().optional(),
  temperature: z.unknown().optional(),
  top_p: z.unknown().optional(),
  stop: z.unknown().optional(),
  seed: z.unknown().optional(),
});

const completionBody = z.strictObject({
  model: z.unknown(),
  prompt: z.string({ error: "must be a string" }),
  max_tokens: z.unknown().optional(),
  temperature: z.unknown().optional(),
  top_p: z.unknown().optional(),
  stop: z.unknown().optional(),
  seed: z.unknown().optional(),
});

export type ParsedOpenAIFile = { readonly lines: readonly BatchLine[]; readonly errors: readonly BatchLineError[] };

/**
 * Validates every line of an OpenAI batch input file and maps each to a job: a chat body to a job
 * with messages, a completions body to one with a prompt. Every bad line is reported (up to
 * MAX_REPORTED_ERRORS), each with its line, param and rule; any error and no job is to be queued.
 */
export function parseOpenAIBatchFile(text: string, endpoint: OpenAIEndpoint, catalog: RouteCatalog, now: Date): ParsedOpenAIFile {
  let numbered;
  try {
    numbered = splitLines(text, "input_file_id");
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return { lines: [], errors: [{ code: error.status === 413 ? "too_many_lines" : "empty_file", message: error.message, param: "input_file_id", line: null }] };
  }
  const lines: BatchLine[] = [];
  const errors: BatchLineError[] = [];
  const seen = new Set<string>();
  for (const { text: lineText, line } of numbered) {
    try {
      const parsed = parseLine(lineText, endpoint, catalog, now);
      if (seen.has(parsed.custom_id)) throw new ValidationError(`custom_id "${parsed.custom_id}" appears more than once in the file`, "custom_id");
      seen.add(parsed.custom_id);
      lines.push({ line, ...parsed });
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      if (errors.length < MAX_REPORTED_ERRORS) errors.push({ code: codeOf(error), message: error.message, param: error.field ?? null, line });
    }
  }
  return { lines: errors.length > 0 ? [] : lines, errors };
}

function codeOf(error: ValidationError): string {
  if (error.field === "custom_id" && error.message.includes("more than once")) return "duplicate_custom_id";
  if (error.field === "url") return "invalid_url";
  if (error.field === "method") return "invalid_method";
  if (error.field === "body.model") return "invalid_model";
  return error.field === undefined ? "invalid_json_line" : "invalid_request";
}

function parseLine(text: string, endpoint: OpenAIEndpoint, catalog: RouteCatalog, now: Date): Omit<BatchLine, "line"> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ValidationError("not valid JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ValidationError("must be a JSON object");
  const line = lineSchema(endpoint).safeParse(raw);
  if (!line.success) throw toValidationError(line.error);
  const { custom_id, body } = line.data;
  return { custom_id, job: checkJob(toJobRequest(body, endpoint, catalog), catalog, now, "body") };
}

/** An OpenAI request body as a job request; the job's own checks then apply, naming `body.<field>`. */
function toJobRequest(body: Record<string, unknown>, endpoint: OpenAIEndpoint, catalog: RouteCatalog): Record<string, unknown> {
  const parsed = (endpoint === "/v1/chat/completions" ? chatBody : completionBody).safeParse(body);
  if (!parsed.success) throw toValidationError(parsed.error, "body");
  const { max_completion_tokens, max_tokens, ...rest } = parsed.data as Record<string, unknown> & { max_tokens?: unknown; max_completion_tokens?: unknown };
  const route = typeof body.model === "string" ? catalog.routes.get(body.model) : undefined;
  // OpenAI lets a request leave its length out: it may then run to the model's limit.
  const length = max_completion_tokens ?? max_tokens ?? route?.limits.max_new_tokens;
  const request = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  return length === undefined ? request : { ...request, max_tokens: length };
}

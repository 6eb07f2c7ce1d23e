import type { z } from "zod";
import { ValidationError } from "./errors.ts";
import { jobRequestSchema, type JobRequest } from "./jobs.ts";
import { promptTextOf } from "./prompt.ts";
import type { Route, RouteCatalog } from "./routes.ts";
import { tokenCounter } from "./tokens.ts";

/** Priority when a job names none: the middle of 0 (lowest) .. 9 (highest). */
export const DEFAULT_PRIORITY = 5;

/** Bytes a request needs around its prompt in the engine's JSON body (parameters, quoting). */
const REQUEST_ENVELOPE_BYTES = 512;

export type CheckedJob = {
  readonly request: JobRequest;
  readonly route: Route;
  /** The text the engine receives: the prompt, or the messages rendered with the chat template. */
  readonly promptText: string;
  readonly promptTokens: number;
};

/** First zod issue as a ValidationError naming the field and the rule. */
export function toValidationError(error: z.ZodError, fieldPrefix = ""): ValidationError {
  const issue = error.issues[0];
  if (!issue) return new ValidationError(`${fieldPrefix || "body"}: invalid`);
  let path = [fieldPrefix, ...issue.path.map(String)].filter(Boolean).join(".");
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    path = [path, issue.keys[0]].filter(Boolean).join(".");
    message = "is not a known field";
  }
  return new ValidationError(`${path || "body"}: ${message}`, path || undefined);
}

/**
 * Validates a job against the schema and against its route's limits. Throws a ValidationError
 * naming the field and the rule; nothing has been written when it throws.
 */
export function checkJob(raw: unknown, catalog: RouteCatalog, now: Date, fieldPrefix = ""): CheckedJob {
  const field = (name: string) => [fieldPrefix, name].filter(Boolean).join(".");
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ValidationError(`${fieldPrefix || "body"}: must be a JSON object`, fieldPrefix || undefined);
  }
  const parsed = jobRequestSchema.safeParse(raw);
  if (!parsed.success) throw toValidationError(parsed.error, fieldPrefix);
  const request = parsed.data;
  const route = catalog.routes.get(request.model);
  if (!route) {
    const known = [...catalog.routes.keys()].join(", ");
    throw new ValidationError(`${field("model")}: unknown model "${request.model}"; known models: ${known}`, field("model"));
  }
  if (request.max_tokens > route.limits.max_new_tokens) {
    throw new ValidationError(`${field("max_tokens")}: must be at most ${route.limits.max_new_tokens} for model ${route.name}`, field("max_tokens"));
  }
  if (request.deadline !== undefined && Date.parse(request.deadline) <= now.getTime()) {
    throw new ValidationError(`${field("deadline")}: must be in the future`, field("deadline"));
  }
  const promptText = promptTextOf(request);
  const promptField = field(request.prompt === undefined ? "messages" : "prompt");
  const promptBytes = Buffer.byteLength(promptText, "utf8");
  if (promptBytes + REQUEST_ENVELOPE_BYTES > route.limits.payload_bytes) {
    throw new ValidationError(`${promptField}: ${promptBytes} bytes is over the ${route.limits.payload_bytes}-byte request limit of model ${route.name}`, promptField, 413);
  }
  const promptTokens = tokenCounter(route.tokenizer).countPrompt(promptText);
  if (promptTokens > route.limits.max_prompt_tokens) {
    throw new ValidationError(`${promptField}: ${promptTokens} tokens is over the ${route.limits.max_prompt_tokens}-token prompt limit of model ${route.name}`, promptField);
  }
  return { request, route, promptText, promptTokens };
}

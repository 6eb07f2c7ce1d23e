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

/**
 * A client's key as a message shows it: a plain name as it is, anything else quoted (the empty
 * key, blanks, control characters), so that the message names it readably.
 */
function shownKey(key: PropertyKey): string {
  const name = String(key);
  if (typeof key === "number" || /^[\w$-]+$/.test(name)) return name;
  // JSON escapes control characters and lone surrogates, but not the line separators U+2028/9.
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** First zod issue as a ValidationError naming the field and the rule. */
export function toValidationError(error: z.ZodError, fieldPrefix = ""): ValidationError {
  const issue = error.issues[0];
  if (!issue) return new ValidationError(`${fieldPrefix || "body"}: invalid`);
  const keys = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0] ?? ""] : issue.path;
  const field = [fieldPrefix, ...keys.map(String)].filter(Boolean).join(".");
  const shown = [fieldPrefix, ...keys.map(shownKey)].filter(Boolean).join(".");
  const message = issue.code === "unrecognized_keys" ? "is not a known field" : issue.message;
  return new ValidationError(`${shown || "body"}: ${message}`, field || undefined);
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
  // A dynamic-batch engine answers a list of prompts at once, so it has no stream to give. A route
  // with any other component can stream: a streamed job that lands on a dynamic one runs unstreamed.
  if (request.stream === true && route.components.every((c) => c.engine === "lmi-dynamic")) {
    throw new ValidationError(
      `${field("stream")}: model ${route.name} runs dynamic batches (engine lmi-dynamic), which cannot stream; leave stream out or set it to false`,
      field("stream"),
    );
  }
  if (request.deadline !== undefined && Date.parse(request.deadline) <= now.getTime()) {
    throw new ValidationError(`${field("deadline")}: must be in the future`, field("deadline"));
  }
  // zod drops a record's `__proto__` key without a word (an object cannot hold it as data): say so.
  const metadata = (raw as { metadata?: unknown }).metadata;
  if (typeof metadata === "object" && metadata !== null && Object.hasOwn(metadata, "__proto__")) {
    throw new ValidationError(`${field("metadata.__proto__")}: is not allowed as a metadata key`, field("metadata.__proto__"));
  }
  const promptText = promptTextOf(request, route.chat_template);
  const promptField = field(request.prompt === undefined ? "messages" : "prompt");
  const promptBytes = Buffer.byteLength(promptText, "utf8");
  if (promptBytes + REQUEST_ENVELOPE_BYTES > route.limits.payload_bytes) {
    throw new ValidationError(`${promptField}: ${promptBytes} bytes is over the ${route.limits.payload_bytes}-byte request limit of model ${route.name}`, promptField, 413);
  }
  const counter = tokenCounter(route.tokenizer);
  // Counting takes time in proportion to the text (a minute for 6 MB): a text too long for the
  // limit even in the vocabulary's longest tokens is refused without counting.
  const fewestTokens = Math.ceil(promptText.length / counter.maxTokenLength);
  if (fewestTokens > route.limits.max_prompt_tokens) {
    throw new ValidationError(`${promptField}: at least ${fewestTokens} tokens is over the ${route.limits.max_prompt_tokens}-token prompt limit of model ${route.name}`, promptField);
  }
  const promptTokens = counter.countPrompt(promptText);
  if (promptTokens > route.limits.max_prompt_tokens) {
    throw new ValidationError(`${promptField}: ${promptTokens} tokens is over the ${route.limits.max_prompt_tokens}-token prompt limit of model ${route.name}`, promptField);
  }
  return { request, route, promptText, promptTokens };
}

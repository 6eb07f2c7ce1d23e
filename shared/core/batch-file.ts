import { z } from "zod";
import { ValidationError } from "./errors.ts";
import type { RouteCatalog } from "./routes.ts";
import { checkJob, toValidationError, type CheckedJob } from "./submission.ts";

/** OpenAI's batch API takes at most 50,000 requests per file; so do we. */
export const MAX_BATCH_LINES = 50_000;

const lineSchema = z.strictObject({
  custom_id: z.string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") })
    .min(1, "must not be empty").max(64, "at most 64 characters"),
  method: z.literal("POST", { error: 'must be "POST"' }).optional(),
  url: z.literal("/v1/jobs", { error: 'must be "/v1/jobs"' }).optional(),
  body: z.unknown().optional(),
});

export type BatchLine = { readonly line: number; readonly custom_id: string; readonly job: CheckedJob };

/**
 * Parses and validates a whole JSON-lines batch file before anything is written: one bad line
 * rejects the file, naming the line, the field and the rule.
 */
export function parseBatchFile(text: string, catalog: RouteCatalog, now: Date): BatchLine[] {
  const lines = splitLines(text, "body");
  const seen = new Set<string>();
  return lines.map(({ text: lineText, line }) => {
    let raw: unknown;
    try {
      raw = JSON.parse(lineText);
    } catch {
      throw new ValidationError(`line ${line}: not valid JSON`, `line ${line}`);
    }
    const parsed = lineSchema.safeParse(raw);
    if (!parsed.success) throw prefixed(toValidationError(parsed.error), line);
    if (seen.has(parsed.data.custom_id)) {
      throw new ValidationError(`line ${line}: custom_id "${parsed.data.custom_id}" appears twice`, `line ${line}.custom_id`);
    }
    seen.add(parsed.data.custom_id);
    if (parsed.data.body === undefined) throw new ValidationError(`line ${line}: body: is required`, `line ${line}.body`);
    try {
      return { line, custom_id: parsed.data.custom_id, job: checkJob(parsed.data.body, catalog, now, "body") };
    } catch (error) {
      if (error instanceof ValidationError) throw prefixed(error, line);
      throw error;
    }
  });
}

function prefixed(error: ValidationError, line: number): ValidationError {
  return new ValidationError(`line ${line}: ${error.message}`, error.field ? `line ${line}.${error.field}` : `line ${line}`, error.status);
}

/** A file's non-blank lines, numbered as in the file; an empty file or one past the limit is refused. */
export function splitLines(text: string, field: string): { readonly text: string; readonly line: number }[] {
  const lines = text.split("\n").map((l, i) => ({ text: l.trim(), line: i + 1 })).filter((l) => l.text.length > 0);
  if (lines.length === 0) throw new ValidationError("batch file is empty: send one JSON object per line", field);
  if (lines.length > MAX_BATCH_LINES) {
    throw new ValidationError(`batch file has ${lines.length} lines; at most ${MAX_BATCH_LINES}`, field, 413);
  }
  return lines;
}

import { ValidationError } from "../core/errors.ts";

/** DynamoDB's LastEvaluatedKey as an opaque page cursor. */
export function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key === undefined ? undefined : Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

export function decodeCursor(cursor: string | undefined): Record<string, unknown> | undefined {
  if (cursor === undefined) return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (isKey(key)) return key;
  } catch {
    // fall through to the error below
  }
  throw invalidCursor();
}

/**
 * What a LastEvaluatedKey holds: attribute names to strings and numbers. Anything else is not a
 * cursor this API returned, and some of it (1e21, 1e309) the SDK refuses to send with a plain
 * Error, before DynamoDB could answer ValidationException.
 */
function isKey(value: unknown): value is Record<string, string | number> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  return Object.values(value).every((v) => typeof v === "string" || (typeof v === "number" && Number.isFinite(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER));
}

const invalidCursor = () => new ValidationError("cursor: not a cursor this API returned", "cursor");

/**
 * For a query's `.catch`: DynamoDB answers a start key it did not hand out (well-formed JSON, but
 * not a key of this index or this partition) with ValidationException, which is the caller's
 * cursor at fault, not a failure of the service.
 */
export function rejectForeignCursor(cursor: string | undefined): (error: unknown) => never {
  return (error) => {
    const name = typeof error === "object" && error !== null ? (error as { name?: unknown }).name : undefined;
    if (cursor !== undefined && name === "ValidationException") throw invalidCursor();
    throw error;
  };
}

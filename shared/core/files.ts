import type { FileRecord } from "../ports.ts";
import { ValidationError } from "./errors.ts";

/**
 * Files as OpenAI's Files API has them (docs/openai-compatible.md): the id format, the purposes,
 * the object clients read, the list's query, and the sizes AWS lets through.
 */

export type FilePurpose = FileRecord["purpose"];
/** What a client may upload; `batch_output` files are written by batchline only. */
export const UPLOAD_PURPOSES: readonly FilePurpose[] = ["batch"];

/** `file-` and 32 hex digits, as OpenAI's ids look (clients and tools match on the prefix). */
export const FILE_ID = /^file-[0-9a-f]{32}$/;
/** An upload's id; its own prefix keeps it apart from files in the one table they share. */
export const UPLOAD_ID = /^upload_[0-9a-f]{32}$/;

/** Where a file's bytes live in the bucket. */
export const storageKey = (fileId: string) => `files/${fileId}`;

/**
 * What a request to the API may carry, as AWS enforces it: API Gateway HTTP APIs refuse a body
 * over 10 MiB, and Lambda an invocation payload (the event, body and headers) over 6 MiB. A
 * multipart body reaches the function base64-encoded (4/3 of its size), so a POST /v1/files
 * carries at most about 4.4 MB of file; bigger files go through /v1/uploads.
 */
export const API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;
export const LAMBDA_MAX_REQUEST_BYTES = 6 * 1024 * 1024;
/** OpenAI's limit on a batch input file; an upload may not announce more. */
export const MAX_FILE_BYTES = 200 * 1024 * 1024;
/** How long an upload (and its presigned PUT) stays open, as OpenAI's uploads do. */
export const UPLOAD_TTL_SECONDS = 60 * 60;

/** OpenAI's file object. */
export type FileObject = {
  readonly id: string;
  readonly object: "file";
  readonly bytes: number;
  readonly created_at: number;
  readonly filename: string;
  readonly purpose: FilePurpose;
  readonly status: "processed";
  readonly expires_at: number | null;
};

export function toFileObject(file: FileRecord): FileObject {
  return {
    id: file.file_id,
    object: "file",
    bytes: file.bytes,
    created_at: file.created_at,
    filename: file.filename,
    purpose: file.purpose,
    status: "processed",
    expires_at: file.expires_at ?? null,
  };
}

export function uploadPurpose(value: unknown): FilePurpose {
  if (typeof value !== "string" || !(UPLOAD_PURPOSES as readonly string[]).includes(value)) {
    throw new ValidationError(`purpose: must be one of ${UPLOAD_PURPOSES.join(", ")}, got ${JSON.stringify(value ?? null)}`, "purpose");
  }
  return value as FilePurpose;
}

/** A filename as it is stored and shown: not empty, one line, at most 255 characters. */
export function filename(value: unknown, field = "filename"): string {
  if (typeof value !== "string" || value.trim() === "") throw new ValidationError(`${field}: is required (a non-empty string)`, field);
  if (value.length > 255) throw new ValidationError(`${field}: must be at most 255 characters, got ${value.length}`, field);
  if (/[\u0000-\u001f]/.test(value)) throw new ValidationError(`${field}: must not contain control characters`, field);
  return value;
}

export type FileListQuery = {
  readonly limit: number;
  readonly after?: string | undefined;
  readonly order: "asc" | "desc";
  readonly purpose?: FilePurpose | undefined;
};

/** `?after=&limit=&order=&purpose=` as OpenAI's files list takes them: limit 1 to 10,000 (default 10,000), newest first. */
export function fileListQuery(query: Readonly<Record<string, string | undefined>> | undefined): FileListQuery {
  let limit = 10_000;
  if (query?.limit !== undefined) {
    limit = Number(query.limit);
    if (!/^\d+$/.test(query.limit) || limit < 1 || limit > 10_000) throw new ValidationError(`limit: must be an integer from 1 to 10000, got "${query.limit}"`, "limit");
  }
  const order = query?.order ?? "desc";
  if (order !== "asc" && order !== "desc") throw new ValidationError(`order: must be asc or desc, got "${order}"`, "order");
  const purpose = query?.purpose;
  if (purpose !== undefined && purpose !== "batch" && purpose !== "batch_output") {
    throw new ValidationError(`purpose: must be batch or batch_output, got "${purpose}"`, "purpose");
  }
  const after = query?.after || undefined;
  if (after !== undefined && !FILE_ID.test(after)) throw new ValidationError(`after: must be a file id (file-<32 hex>), got "${after}"`, "after");
  return { limit, order, ...(after && { after }), ...(purpose && { purpose }) };
}

/** OpenAI's list envelope. */
export function fileList(items: readonly FileRecord[], hasMore: boolean) {
  const data = items.map(toFileObject);
  return { object: "list" as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore };
}

/**
 * Lambda answers at most 6 MiB of response payload: the whole response object, its body
 * JSON-escaped (a JSON line's quotes count twice). A body that would not fit is served from S3.
 */
export function fitsLambdaResponse(body: string): boolean {
  const envelope = 1024;
  return JSON.stringify(body).length + envelope <= LAMBDA_MAX_REQUEST_BYTES;
}

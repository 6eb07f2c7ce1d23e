import { randomBytes } from "node:crypto";
import { NotFoundError, ValidationError } from "../core/errors.ts";
import {
  filename as checkFilename, FILE_ID, fitsLambdaResponse, toFileObject, type FileListQuery, LAMBDA_MAX_REQUEST_BYTES, MAX_FILE_BYTES, storageKey, UPLOAD_ID, UPLOAD_TTL_SECONDS, uploadPurpose,
} from "../core/files.ts";
import type { BlobStore, Clock, FileRecord, FileStore, UploadRecord, UploadStore } from "../ports.ts";

/**
 * Files of a tenant: metadata in the FileStore, bytes in the BlobStore. The batches engineer's
 * entry points are `readFileContent` (a batch's input file) and `writeFile` (its output and error
 * files); the rest serve /v1/files and /v1/uploads.
 */
export type FilesDeps = { readonly files: FileStore; readonly blobs: BlobStore; readonly clock: Clock };
export type UploadsDeps = FilesDeps & { readonly uploads: UploadStore };

const JSONL = "application/jsonl";
const hex = () => randomBytes(16).toString("hex");
const epochSeconds = (clock: Clock) => Math.floor(clock.now().getTime() / 1000);

/**
 * Stores `content` as a new file of the tenant and answers its record (`toFileObject` gives
 * OpenAI's file object). Bytes first, then the record: a file that is listed always has its bytes.
 * `expiresAt` (epoch seconds) lets DynamoDB's TTL and the bucket's lifecycle remove it.
 */
export async function writeFile(
  deps: FilesDeps,
  tenant: string,
  file: {
    readonly filename: string;
    readonly purpose: FileRecord["purpose"];
    readonly content: Uint8Array | string;
    readonly expiresAt?: number | undefined;
    /** An id the caller derived, so that writing the same file again replaces it rather than adding another. */
    readonly fileId?: string | undefined;
  },
): Promise<FileRecord> {
  const fileId = file.fileId ?? `file-${hex()}`;
  const key = storageKey(fileId);
  const bytes = typeof file.content === "string" ? Buffer.byteLength(file.content, "utf8") : file.content.byteLength;
  await deps.blobs.put(key, file.content, JSONL);
  const record: FileRecord = {
    file_id: fileId,
    tenant,
    filename: checkFilename(file.filename),
    purpose: file.purpose,
    bytes,
    created_at: epochSeconds(deps.clock),
    storage_key: key,
    ...(file.expiresAt !== undefined && { expires_at: file.expiresAt }),
  };
  await deps.files.create(record);
  return record;
}

/** POST /v1/files: the form's `file` part and `purpose`, as the official client sends them. */
export async function uploadFile(deps: FilesDeps, tenant: string, form: { readonly file: unknown; readonly purpose: unknown }): Promise<FileRecord> {
  const purpose = uploadPurpose(form.purpose);
  if (!(form.file instanceof Blob)) throw new ValidationError("file: is required (a file part of the multipart form)", "file");
  if (form.file.size === 0) throw new ValidationError("file: is empty", "file");
  const name = form.file instanceof File && form.file.name !== "" ? form.file.name : undefined;
  return writeFile(deps, tenant, { filename: checkFilename(name, "file"), purpose, content: new Uint8Array(await form.file.arrayBuffer()) });
}

/** A file of the tenant. Another tenant's file, or one past its expiry, is "not found". */
export async function getFile(deps: Pick<FilesDeps, "files" | "clock">, tenant: string, fileId: string): Promise<FileRecord> {
  const file = FILE_ID.test(fileId) ? await deps.files.get(fileId) : undefined;
  const expired = file?.expires_at !== undefined && file.expires_at <= epochSeconds(deps.clock);
  if (!file || file.tenant !== tenant || expired) throw new NotFoundError(`file ${fileId} not found`);
  return file;
}

/** The bytes of a file of the tenant, as they were stored: a batch's input file is read with this. */
export async function readFileContent(deps: FilesDeps, tenant: string, fileId: string): Promise<Uint8Array> {
  const file = await getFile(deps, tenant, fileId);
  const content = await deps.blobs.get(file.storage_key);
  // The record outlives its bytes only if the bucket's lifecycle ran first: it is gone all the same.
  if (content === undefined) throw new NotFoundError(`file ${fileId} not found`);
  return content;
}

/**
 * GET /v1/files/{id}/content: the text itself when it fits a Lambda response, else a short-lived
 * presigned S3 GET to redirect to (fetch, and so the official client, follows it).
 */
export async function fileContent(deps: FilesDeps, tenant: string, fileId: string): Promise<{ readonly text: string } | { readonly redirect: string }> {
  const file = await getFile(deps, tenant, fileId);
  // Its recorded size decides first: a 200 MB file is never read into the function.
  if (file.bytes <= LAMBDA_MAX_REQUEST_BYTES) {
    const text = Buffer.from(await readFileContent(deps, tenant, fileId)).toString("utf8");
    if (fitsLambdaResponse(text)) return { text };
  }
  return { redirect: await deps.blobs.presignGet(file.storage_key, CONTENT_URL_TTL_SECONDS, JSONL) };
}

const CONTENT_URL_TTL_SECONDS = 300;

export async function listFiles(deps: Pick<FilesDeps, "files">, tenant: string, query: FileListQuery) {
  return deps.files.listByTenant(tenant, query);
}

/** Deletes the record first: once it is gone nobody reaches the bytes, whose delete may then fail harmlessly. */
export async function deleteFile(deps: FilesDeps, tenant: string, fileId: string): Promise<void> {
  const file = await getFile(deps, tenant, fileId);
  await deps.files.delete(file.file_id);
  await deps.blobs.delete(file.storage_key);
}

/** OpenAI's upload object. */
export function toUploadObject(upload: UploadRecord, file?: FileRecord) {
  return {
    id: upload.upload_id,
    object: "upload" as const,
    bytes: upload.bytes,
    created_at: upload.created_at,
    filename: upload.filename,
    purpose: upload.purpose,
    status: upload.status,
    expires_at: upload.expires_at,
    ...(file && { file: toFileObject(file) }),
  };
}

/**
 * POST /v1/uploads `{filename, purpose, bytes, mime_type}`: a pending upload and a presigned S3
 * PUT for its bytes, open for an hour. The API never carries them, so no request limit applies.
 * The file's id is chosen now and the bytes go straight to the file's key: completing copies
 * nothing (a 200 MB file would not fit a Lambda's memory twice).
 */
export async function createUpload(deps: UploadsDeps, tenant: string, body: unknown): Promise<{ upload: UploadRecord; uploadUrl: string }> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ValidationError("body: must be a JSON object", "body");
  const fields = body as Record<string, unknown>;
  const purpose = uploadPurpose(fields.purpose);
  const bytes = fields.bytes;
  if (typeof bytes !== "number" || !Number.isInteger(bytes) || bytes < 1 || bytes > MAX_FILE_BYTES) {
    throw new ValidationError(`bytes: must be an integer from 1 to ${MAX_FILE_BYTES} (200 MB), got ${JSON.stringify(bytes ?? null)}`, "bytes");
  }
  const mimeType = fields.mime_type;
  if (typeof mimeType !== "string" || mimeType.trim() === "") throw new ValidationError("mime_type: is required (a string, e.g. application/jsonl)", "mime_type");
  const createdAt = epochSeconds(deps.clock);
  const fileId = `file-${hex()}`;
  const upload: UploadRecord = {
    upload_id: `upload_${hex()}`,
    tenant,
    filename: checkFilename(fields.filename),
    purpose: purpose as "batch",
    bytes,
    mime_type: mimeType,
    created_at: createdAt,
    expires_at: createdAt + UPLOAD_TTL_SECONDS,
    storage_key: storageKey(fileId),
    status: "pending",
    file_id: fileId,
  };
  const uploadUrl = await deps.blobs.presignPut(upload.storage_key, UPLOAD_TTL_SECONDS, mimeType);
  await deps.uploads.create(upload);
  return { upload, uploadUrl };
}

/**
 * POST /v1/uploads/{id}/complete: the object PUT to the upload's URL must have the size announced;
 * the upload then becomes its file. Safe to repeat and to race: every call writes the same file
 * record (its created_at is the upload's), and a completed upload answers its file again.
 */
export async function completeUpload(deps: UploadsDeps, tenant: string, uploadId: string): Promise<{ upload: UploadRecord; file: FileRecord }> {
  const upload = UPLOAD_ID.test(uploadId) ? await deps.uploads.get(uploadId) : undefined;
  if (!upload || upload.tenant !== tenant) throw new NotFoundError(`upload ${uploadId} not found`);
  const file: FileRecord = {
    file_id: upload.file_id,
    tenant,
    filename: upload.filename,
    purpose: upload.purpose,
    bytes: upload.bytes,
    created_at: upload.created_at,
    storage_key: upload.storage_key,
  };
  if (upload.status === "completed") return { upload, file: await getFile(deps, tenant, upload.file_id) };
  if (upload.expires_at <= epochSeconds(deps.clock)) throw new ValidationError(`upload ${uploadId} has expired: create another`, "upload_id");
  const size = await deps.blobs.size(upload.storage_key);
  if (size === undefined) throw new ValidationError(`upload ${uploadId}: nothing was PUT to its upload_url yet`, "upload_id");
  if (size !== upload.bytes) throw new ValidationError(`bytes: the upload announced ${upload.bytes} bytes, ${size} were PUT`, "bytes");
  await deps.files.create(file);
  await deps.uploads.complete(uploadId);
  return { upload: { ...upload, status: "completed" }, file };
}

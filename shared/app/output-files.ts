import type { BatchRecord } from "../core/batches.ts";
import { derivedHex, epochSeconds } from "../core/openai-batches.ts";
import type { BlobStore, Clock, FileRecord, FileStore } from "../ports.ts";

export type OutputFileDeps = { readonly files: FileStore; readonly blobs: BlobStore; readonly clock: Clock };

/**
 * Writes one of a batch's files (purpose batch_output) and returns its id. The id is derived from
 * the batch and the file's role, so a finalize run again overwrites the same object and record
 * rather than leaving a second file behind.
 */
export async function writeBatchFile(deps: OutputFileDeps, batch: BatchRecord, role: "output" | "error", lines: readonly string[]): Promise<string> {
  const fileId = `file-${derivedHex("batch-file", batch.batch_id, role)}`;
  const body = lines.join("\n") + "\n";
  const storageKey = `files/${fileId}`;
  await deps.blobs.put(storageKey, body, "application/jsonl");
  const file: FileRecord = {
    file_id: fileId,
    tenant: batch.tenant,
    filename: `${batch.batch_id}_${role}.jsonl`,
    purpose: "batch_output",
    bytes: Buffer.byteLength(body),
    created_at: epochSeconds(deps.clock.now()),
    storage_key: storageKey,
    // The file goes when its batch does.
    expires_at: batch.expires_at,
  };
  await deps.files.create(file);
  return fileId;
}

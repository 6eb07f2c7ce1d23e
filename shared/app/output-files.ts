import type { BatchRecord } from "../core/batches.ts";
import { derivedHex } from "../core/openai-batches.ts";
import { writeFile, type FilesDeps } from "./files.ts";

export type OutputFileDeps = FilesDeps;

/**
 * Writes one of a batch's files (purpose batch_output) and returns its id. The id is derived from
 * the batch and the file's role, so a finalize run again overwrites the same object and record
 * rather than leaving a second file behind. The file goes when its batch does.
 */
export async function writeBatchFile(deps: OutputFileDeps, batch: BatchRecord, role: "output" | "error", lines: readonly string[]): Promise<string> {
  const file = await writeFile(deps, batch.tenant, {
    fileId: `file-${derivedHex("batch-file", batch.batch_id, role)}`,
    filename: `${batch.batch_id}_${role}.jsonl`,
    purpose: "batch_output",
    content: `${lines.join("\n")}\n`,
    expiresAt: batch.expires_at,
  });
  return file.file_id;
}

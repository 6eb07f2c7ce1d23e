import { describe, expect, it } from "vitest";
import { completeUpload, createUpload, deleteFile, fileContent, getFile, listFiles, readFileContent, uploadFile, writeFile } from "#shared/app/files";
import { NotFoundError, ValidationError } from "#shared/core/errors";
import { FILE_ID, UPLOAD_ID } from "#shared/core/files";
import { memoryDeps } from "../../helpers/fakes.ts";

const lines = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}\n';

describe("files", () => {
  it("stores an uploaded file part as a file of the tenant: bytes in the blob store under files/<id>, metadata in the file store", async () => {
    const deps = memoryDeps();
    const file = await uploadFile(deps, "acme", { file: new File([lines], "in.jsonl"), purpose: "batch" });
    expect(file).toMatchObject({ tenant: "acme", filename: "in.jsonl", purpose: "batch", bytes: Buffer.byteLength(lines), created_at: Math.floor(deps.clock.now().getTime() / 1000) });
    expect(file.file_id).toMatch(FILE_ID);
    expect(file.storage_key).toBe(`files/${file.file_id}`);
    expect(Buffer.from(await readFileContent(deps, "acme", file.file_id)).toString()).toBe(lines);
  });

  it("refuses a form without a file part, an empty file, or a purpose other than batch, naming the field", async () => {
    const deps = memoryDeps();
    const field = (p: Promise<unknown>) => p.then(() => "accepted", (e: ValidationError) => e.field);
    expect(await field(uploadFile(deps, "acme", { file: "text", purpose: "batch" }))).toBe("file");
    expect(await field(uploadFile(deps, "acme", { file: new File([], "e.jsonl"), purpose: "batch" }))).toBe("file");
    expect(await field(uploadFile(deps, "acme", { file: new File([lines], "in.jsonl"), purpose: "batch_output" }))).toBe("purpose");
  });

  it("are each tenant's own: another tenant's id is not found, for reading, content and delete alike", async () => {
    const deps = memoryDeps();
    const file = await writeFile(deps, "acme", { filename: "out.jsonl", purpose: "batch_output", content: lines });
    for (const call of [getFile(deps, "globex", file.file_id), readFileContent(deps, "globex", file.file_id), deleteFile(deps, "globex", file.file_id)]) {
      await expect(call).rejects.toBeInstanceOf(NotFoundError);
    }
    expect((await getFile(deps, "acme", file.file_id)).file_id).toBe(file.file_id);
  });

  it("are not found past their expiry, though TTL has not removed them yet", async () => {
    const deps = memoryDeps();
    const now = Math.floor(deps.clock.now().getTime() / 1000);
    const file = await writeFile(deps, "acme", { filename: "out.jsonl", purpose: "batch_output", content: lines, expiresAt: now + 10 });
    expect((await getFile(deps, "acme", file.file_id)).expires_at).toBe(now + 10);
    deps.time.advance(10_000);
    await expect(getFile(deps, "acme", file.file_id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("go with their bytes when deleted", async () => {
    const deps = memoryDeps();
    const file = await writeFile(deps, "acme", { filename: "out.jsonl", purpose: "batch_output", content: lines });
    await deleteFile(deps, "acme", file.file_id);
    expect(deps.blobs.objects.has(file.storage_key)).toBe(false);
    await expect(getFile(deps, "acme", file.file_id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await listFiles(deps, "acme", { limit: 10, order: "desc" })).items).toEqual([]);
  });

  it("serve their content inline when it fits a Lambda response, and from a presigned GET when it does not", async () => {
    const deps = memoryDeps();
    const small = await writeFile(deps, "acme", { filename: "s.jsonl", purpose: "batch", content: lines });
    expect(await fileContent(deps, "acme", small.file_id)).toEqual({ text: lines });
    const big = await writeFile(deps, "acme", { filename: "b.jsonl", purpose: "batch", content: lines.repeat(Math.ceil(7_000_000 / lines.length)) });
    expect(await fileContent(deps, "acme", big.file_id)).toEqual({ redirect: expect.stringContaining(encodeURIComponent(big.storage_key)) });
  });
});

describe("uploads", () => {
  const announce = { filename: "big.jsonl", purpose: "batch", bytes: Buffer.byteLength(lines), mime_type: "application/jsonl" };

  it("open with a presigned PUT under the file-to-be's key, and complete into that file once the bytes are there", async () => {
    const deps = memoryDeps();
    const { upload, uploadUrl } = await createUpload(deps, "acme", announce);
    expect(upload).toMatchObject({ tenant: "acme", status: "pending", bytes: announce.bytes, expires_at: upload.created_at + 3600 });
    expect(upload.upload_id).toMatch(UPLOAD_ID);
    expect(upload.storage_key).toBe(`files/${upload.file_id}`);
    expect(uploadUrl).toContain("expires=3600");
    await deps.blobs.put(upload.storage_key, lines, "application/jsonl");
    const { upload: done, file } = await completeUpload(deps, "acme", upload.upload_id);
    expect(done.status).toBe("completed");
    expect(file).toMatchObject({ file_id: upload.file_id, filename: "big.jsonl", purpose: "batch", bytes: announce.bytes });
    expect(Buffer.from(await readFileContent(deps, "acme", file.file_id)).toString()).toBe(lines);
    // Again: the same file, not a second one.
    expect((await completeUpload(deps, "acme", upload.upload_id)).file).toEqual(file);
    expect(deps.files.files.size).toBe(1);
  });

  it("do not complete before the bytes are PUT, with other bytes than announced, after they expire, or for another tenant", async () => {
    const deps = memoryDeps();
    const { upload } = await createUpload(deps, "acme", announce);
    await expect(completeUpload(deps, "acme", upload.upload_id)).rejects.toMatchObject({ field: "upload_id", message: expect.stringMatching(/nothing was PUT/) });
    await deps.blobs.put(upload.storage_key, lines + "x", "application/jsonl");
    await expect(completeUpload(deps, "acme", upload.upload_id)).rejects.toMatchObject({ field: "bytes" });
    await expect(completeUpload(deps, "globex", upload.upload_id)).rejects.toBeInstanceOf(NotFoundError);
    deps.time.advance(3_600_000);
    await expect(completeUpload(deps, "acme", upload.upload_id)).rejects.toMatchObject({ field: "upload_id", message: expect.stringMatching(/expired/) });
    expect(deps.files.files.size).toBe(0);
  });

  it("refuse what OpenAI's uploads refuse: bytes over 200 MB or not a whole number, no mime_type, purpose other than batch", async () => {
    const deps = memoryDeps();
    const field = (body: unknown) => createUpload(deps, "acme", body).then(() => "accepted", (e: ValidationError) => e.field);
    expect(await field({ ...announce, bytes: 200 * 1024 * 1024 + 1 })).toBe("bytes");
    expect(await field({ ...announce, bytes: 1.5 })).toBe("bytes");
    expect(await field({ ...announce, mime_type: undefined })).toBe("mime_type");
    expect(await field({ ...announce, purpose: "assistants" })).toBe("purpose");
    expect(await field({ ...announce, filename: "" })).toBe("filename");
    expect(await field([])).toBe("body");
  });
});

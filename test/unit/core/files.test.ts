import { describe, expect, it } from "vitest";
import { ValidationError } from "#shared/core/errors";
import { fileList, fileListQuery, filename, fitsLambdaResponse, LAMBDA_MAX_REQUEST_BYTES, toFileObject, uploadPurpose } from "#shared/core/files";
import type { FileRecord } from "#shared/ports";

const record: FileRecord = { file_id: `file-${"a".repeat(32)}`, tenant: "acme", filename: "in.jsonl", purpose: "batch", bytes: 12, created_at: 1_800_000_000, storage_key: "files/x" };

function refusal(run: () => unknown): { field: string | undefined; message: string } {
  try {
    run();
  } catch (error) {
    if (error instanceof ValidationError) return { field: error.field, message: error.message };
    throw error;
  }
  throw new Error("not refused");
}

describe("the file object", () => {
  it("is OpenAI's shape, with expires_at null when the file does not expire; the tenant and storage key stay inside", () => {
    expect(toFileObject(record)).toEqual({ id: record.file_id, object: "file", bytes: 12, created_at: 1_800_000_000, filename: "in.jsonl", purpose: "batch", status: "processed", expires_at: null });
    expect(toFileObject({ ...record, expires_at: 1_900_000_000 }).expires_at).toBe(1_900_000_000);
  });

  it("lists as OpenAI's list, with first and last ids (null when empty)", () => {
    expect(fileList([record], true)).toMatchObject({ object: "list", first_id: record.file_id, last_id: record.file_id, has_more: true });
    expect(fileList([], false)).toEqual({ object: "list", data: [], first_id: null, last_id: null, has_more: false });
  });
});

describe("uploads", () => {
  it("take purpose batch only, naming the field", () => {
    expect(uploadPurpose("batch")).toBe("batch");
    for (const bad of ["batch_output", "fine-tune", undefined, 3]) expect(refusal(() => uploadPurpose(bad)).field).toBe("purpose");
  });

  it("need a filename of one line and at most 255 characters", () => {
    expect(filename("in.jsonl")).toBe("in.jsonl");
    expect(refusal(() => filename("")).field).toBe("filename");
    expect(refusal(() => filename("a\nb", "file")).field).toBe("file");
    expect(refusal(() => filename("x".repeat(256))).message).toMatch(/at most 255/);
  });
});

describe("the list query", () => {
  it("defaults as OpenAI's files list: 10,000 newest first", () => {
    expect(fileListQuery(undefined)).toEqual({ limit: 10_000, order: "desc" });
    expect(fileListQuery({ limit: "2", order: "asc", purpose: "batch_output", after: record.file_id })).toEqual({ limit: 2, order: "asc", purpose: "batch_output", after: record.file_id });
  });

  it("refuses a limit outside 1..10000, an unknown order or purpose, and an after that is no file id", () => {
    for (const limit of ["0", "10001", "1.5", "x", "-1"]) expect(refusal(() => fileListQuery({ limit })).field).toBe("limit");
    expect(refusal(() => fileListQuery({ order: "newest" })).field).toBe("order");
    expect(refusal(() => fileListQuery({ purpose: "fine-tune" })).field).toBe("purpose");
    expect(refusal(() => fileListQuery({ after: "batch_1" })).field).toBe("after");
  });
});

describe("a Lambda response", () => {
  it("counts the body JSON-escaped: a line of quotes takes twice its size", () => {
    const plain = "a".repeat(LAMBDA_MAX_REQUEST_BYTES - 2_000);
    expect(fitsLambdaResponse(plain)).toBe(true);
    expect(fitsLambdaResponse('"'.repeat(LAMBDA_MAX_REQUEST_BYTES / 2))).toBe(false);
  });
});

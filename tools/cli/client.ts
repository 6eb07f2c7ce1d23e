import { openAsBlob } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { CliError, EXIT } from "./exit-codes.ts";
import type { Settings } from "./settings.ts";

/**
 * Files up to this size go in one `POST /v1/files`: Lambda takes 6 MB of invocation payload and a
 * file arrives base64-encoded, a third larger. A larger one goes to S3 through `/v1/uploads`.
 */
export const DIRECT_UPLOAD_LIMIT_BYTES = 4 * 1024 * 1024;

export type FileObject = { readonly id: string; readonly bytes: number; readonly filename: string };
export type BatchObject = {
  readonly id: string;
  readonly status: string;
  readonly output_file_id?: string | null;
  readonly error_file_id?: string | null;
  readonly request_counts?: { readonly total: number; readonly completed: number; readonly failed: number };
  readonly errors?: { readonly data?: readonly { readonly code: string; readonly message: string; readonly line?: number | null }[] } | null;
};

/** The stack's HTTP API, its failures as CliErrors: unreachable, or refused with the stack's own message. */
export class Api {
  readonly #settings: Settings;

  constructor(settings: Settings) {
    this.#settings = settings;
  }

  /** A JSON answer; the body is `body` as JSON, or `raw` as it is (a JSON-lines file). */
  async json<T>(method: string, path: string, body?: unknown, raw?: string): Promise<T> {
    const text = raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const response = await this.#send(method, path, text, { "content-type": raw === undefined ? "application/json" : "application/jsonl" });
    return (await response.json()) as T;
  }

  async text(path: string): Promise<string> {
    return (await this.#send("GET", path)).text();
  }

  /** A page of a paged text answer, and the next page's cursor (`x-next-cursor`). */
  async page(path: string): Promise<{ readonly text: string; readonly next: string | undefined }> {
    const response = await this.#send("GET", path);
    return { text: await response.text(), next: response.headers.get("x-next-cursor") ?? undefined };
  }

  /** Uploads a batch input file: in one request when it fits, through a presigned S3 URL when not. */
  async uploadFile(path: string): Promise<FileObject> {
    const { size } = await stat(path);
    const blob = await openAsBlob(path, { type: "application/jsonl" });
    if (size <= DIRECT_UPLOAD_LIMIT_BYTES) {
      const form = new FormData();
      form.set("purpose", "batch");
      form.set("file", blob, basename(path));
      return (await (await this.#send("POST", "/v1/files", form)).json()) as FileObject;
    }
    const upload = await this.json<{ id: string; upload_url: string }>("POST", "/v1/uploads", { filename: basename(path), purpose: "batch", bytes: size, mime_type: "application/jsonl" });
    const put = await this.#fetch(upload.upload_url, { method: "PUT", body: blob, headers: { "content-type": "application/jsonl" } });
    if (!put.ok) throw new CliError(`uploading ${path} to S3: ${put.status} ${(await put.text()).slice(0, 300)}`, EXIT.refused);
    const done = await this.json<{ file: FileObject }>("POST", `/v1/uploads/${upload.id}/complete`, {});
    return done.file;
  }

  async #send(method: string, path: string, body?: string | FormData, headers: Record<string, string> = {}): Promise<Response> {
    const response = await this.#fetch(`${this.#settings.apiUrl}${path}`, { method, body, headers: { authorization: `Bearer ${this.#settings.apiKey}`, ...(typeof body === "string" ? headers : {}) } });
    if (response.ok) return response;
    const text = await response.text();
    let message = text.slice(0, 500);
    try {
      const parsed = JSON.parse(text) as { error?: { message?: string } };
      message = parsed.error?.message ?? message;
    } catch {
      // Not JSON (a proxy's page): its text says enough.
    }
    throw new CliError(`${method} ${path}: ${response.status} ${message}`, EXIT.refused);
  }

  async #fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
      throw new CliError(`cannot reach ${new URL(url).origin}${cause} (is the stack running? BATCHLINE_API_URL says where)`, EXIT.unreachable);
    }
  }
}

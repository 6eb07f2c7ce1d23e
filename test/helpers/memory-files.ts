import type { BlobStore, FileRecord, FileStore, UploadRecord, UploadStore, WebhookEvent, WebhookOutbox } from "#shared/ports";

/** Files' metadata in memory, as the DynamoDB store behaves. */
export class MemoryFiles implements FileStore {
  readonly files = new Map<string, FileRecord>();
  async create(file: FileRecord) {
    this.files.set(file.file_id, file);
  }
  async get(fileId: string) {
    return this.files.get(fileId);
  }
  async listByTenant(tenant: string, options: { readonly limit: number; readonly after?: string | undefined; readonly purpose?: string | undefined; readonly order?: "asc" | "desc" | undefined }) {
    const sign = options.order === "asc" ? 1 : -1;
    const mine = [...this.files.values()]
      .filter((f) => f.tenant === tenant && (options.purpose === undefined || f.purpose === options.purpose))
      .sort((a, b) => sign * (a.created_at - b.created_at || a.file_id.localeCompare(b.file_id)));
    const start = options.after === undefined ? 0 : mine.findIndex((f) => f.file_id === options.after) + 1;
    // After a file that is not the tenant's (or not there), nothing follows: as DynamoDB pages.
    if (options.after !== undefined && start === 0) return { items: [], hasMore: false };
    const items = mine.slice(start, start + options.limit);
    return { items, hasMore: start + options.limit < mine.length };
  }
  async delete(fileId: string) {
    this.files.delete(fileId);
  }
}

/** Bytes by key in memory, as S3 keeps them. A presigned URL here is only a name: nothing serves it. */
export class MemoryBlobs implements BlobStore {
  readonly objects = new Map<string, { body: Uint8Array; contentType: string }>();
  async put(key: string, body: Uint8Array | string, contentType: string) {
    this.objects.set(key, { body: typeof body === "string" ? new TextEncoder().encode(body) : body, contentType });
  }
  async get(key: string) {
    return this.objects.get(key)?.body;
  }
  async size(key: string) {
    return this.objects.get(key)?.body.byteLength;
  }
  async delete(key: string) {
    this.objects.delete(key);
  }
  async presignPut(key: string, expiresInSeconds: number) {
    return `memory://blobs/${encodeURIComponent(key)}?expires=${expiresInSeconds}`;
  }
  async presignGet(key: string, expiresInSeconds: number) {
    return `memory://blobs/${encodeURIComponent(key)}?get&expires=${expiresInSeconds}`;
  }
}

/** Uploads in progress in memory, as the DynamoDB store behaves. */
export class MemoryUploads implements UploadStore {
  readonly uploads = new Map<string, UploadRecord>();
  async create(upload: UploadRecord) {
    this.uploads.set(upload.upload_id, upload);
  }
  async get(uploadId: string) {
    return this.uploads.get(uploadId);
  }
  async complete(uploadId: string) {
    const upload = this.uploads.get(uploadId);
    if (upload) this.uploads.set(uploadId, { ...upload, status: "completed" });
  }
}

/** The webhooks queue in memory: what was put on it, in order. */
export class MemoryWebhookOutbox implements WebhookOutbox {
  readonly events: WebhookEvent[] = [];
  async enqueue(events: readonly WebhookEvent[]) {
    this.events.push(...events);
  }
}

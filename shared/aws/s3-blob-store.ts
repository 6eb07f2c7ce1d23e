import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { BlobStore } from "../ports.ts";
import { translateSdkError } from "./errors.ts";

/** S3 answers a missing key with NoSuchKey on GET and a bare 404 (NotFound) on HEAD. */
function isMissing(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

async function s3<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw translateSdkError(error, what);
  }
}

async function orMissing<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw translateSdkError(error, what);
  }
}

/** Files' bytes in one bucket, encrypted at rest by the bucket's default (SSE-S3). */
export class S3BlobStore implements BlobStore {
  readonly #client: S3Client;
  readonly #bucket: string;

  constructor(options: { readonly client: S3Client; readonly bucket: string }) {
    this.#client = options.client;
    this.#bucket = options.bucket;
  }

  async put(key: string, body: Uint8Array | string, contentType: string): Promise<void> {
    await s3(`put s3://${this.#bucket}/${key}`, () => this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body, ContentType: contentType })));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return orMissing(`get s3://${this.#bucket}/${key}`, async () => {
      const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
    });
  }

  async size(key: string): Promise<number | undefined> {
    return orMissing(`head s3://${this.#bucket}/${key}`, async () => (await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }))).ContentLength ?? 0);
  }

  async delete(key: string): Promise<void> {
    await s3(`delete s3://${this.#bucket}/${key}`, () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key })));
  }

  /**
   * The content type is not signed: a client PUTs with whatever Content-Type it sends (or none),
   * which AWS and the embedded stack then accept alike (an emulator that checks no signature
   * could not refuse a mismatch the way S3 would).
   */
  async presignPut(key: string, expiresInSeconds: number, _contentType: string): Promise<string> {
    return getSignedUrl(this.#client, new PutObjectCommand({ Bucket: this.#bucket, Key: key }), { expiresIn: expiresInSeconds });
  }

  async presignGet(key: string, expiresInSeconds: number, contentType: string): Promise<string> {
    return getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.#bucket, Key: key, ResponseContentType: contentType }), { expiresIn: expiresInSeconds });
  }
}

import {
  ChangeMessageVisibilityCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { RetryableError } from "../core/errors.ts";
import type { JobMessage } from "../core/jobs.ts";
import type { Lane } from "../core/lanes.ts";
import type { JobQueue, ReceivedMessage } from "../ports.ts";
import { SqsDeleteBatcher } from "./sqs-delete-batcher.ts";
import { QueueUrls, translateQueueError } from "./sqs-queue-urls.ts";

/** SendMessageBatch takes 10 entries and 256 KiB in all; stay under both. */
const MAX_ENTRIES = 10;
const MAX_BATCH_BYTES = 250 * 1024;
/** Batches sent at once: enough to keep a large batch file fast without flooding the client. */
const PARALLEL_SENDS = 8;
/**
 * How long a delete waits for others of its queue to share a DeleteMessageBatch call. Short beside
 * what it saves: a batcher's run ends at most this much after its last job's result is durable.
 */
export const DELETE_LINGER_MS = 250;

export class SqsJobQueue implements JobQueue {
  readonly #client: SQSClient;
  readonly #queueName: (route: string, lane: Lane) => string;
  /** By queue name: one GetQueueUrl per lane of a route, for the life of the function. */
  readonly #urls: QueueUrls;
  readonly #deletes: SqsDeleteBatcher;

  constructor(options: { client: SQSClient; queueName: (route: string, lane: Lane) => string; deleteLingerMs?: number }) {
    this.#client = options.client;
    this.#queueName = options.queueName;
    this.#urls = new QueueUrls(options.client);
    this.#deletes = new SqsDeleteBatcher(options.client, options.deleteLingerMs ?? DELETE_LINGER_MS);
  }

  async enqueue(route: string, messages: readonly JobMessage[], lane: Lane = "batch"): Promise<void> {
    const url = await this.#queueUrl(route, lane);
    const chunks = chunkMessages(messages.map((m) => ({ id: m.job_id, body: messageBody(m) })));
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++];
        if (chunk) await this.#sendChunk(url, chunk);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_SENDS, chunks.length) }, worker));
  }

  async receive(route: string, max: number, waitSeconds: number, lane: Lane = "batch"): Promise<readonly ReceivedMessage[]> {
    const url = await this.#queueUrl(route, lane);
    const out = await this.#call("receive from queue", () =>
      this.#client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: Math.min(10, Math.max(1, max)), WaitTimeSeconds: waitSeconds })),
    );
    return (out.Messages ?? []).flatMap((m) =>
      m.MessageId && m.ReceiptHandle && m.Body !== undefined ? [{ messageId: m.MessageId, receiptHandle: m.ReceiptHandle, body: m.Body, lane }] : [],
    );
  }

  async delete(route: string, receiptHandle: string, lane: Lane = "batch"): Promise<void> {
    await this.#deletes.delete(await this.#queueUrl(route, lane), receiptHandle);
  }

  async release(route: string, receiptHandle: string, delaySeconds: number, lane: Lane = "batch"): Promise<void> {
    const url = await this.#queueUrl(route, lane);
    await this.#call("release to queue", () =>
      this.#client.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: receiptHandle, VisibilityTimeout: Math.round(delaySeconds) })),
    );
  }

  async requeue(route: string, message: { readonly body: string; readonly receiptHandle: string; readonly lane?: Lane | undefined }, delaySeconds: number): Promise<void> {
    const lane = message.lane ?? "batch";
    const url = await this.#queueUrl(route, lane);
    await this.#call("requeue", () =>
      this.#client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: message.body, DelaySeconds: Math.min(900, Math.round(delaySeconds)) })),
    );
    await this.delete(route, message.receiptHandle, lane);
  }

  async #call<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw translateQueueError(error, what);
    }
  }

  async #sendChunk(url: string, chunk: readonly { id: string; body: string }[]): Promise<void> {
    let pending = chunk;
    for (let attempt = 0; attempt < 3 && pending.length > 0; attempt++) {
      const out = await this.#client
        .send(new SendMessageBatchCommand({ QueueUrl: url, Entries: pending.map((m, i) => ({ Id: String(i), MessageBody: m.body })) }))
        .catch((error: unknown) => {
          throw translateQueueError(error, "send to queue");
        });
      const failed = new Set((out.Failed ?? []).map((f) => Number(f.Id)));
      pending = pending.filter((_, i) => failed.has(i));
    }
    if (pending.length > 0) throw new RetryableError("unavailable", `SQS refused ${pending.length} messages`);
  }

  #queueUrl(route: string, lane: Lane): Promise<string> {
    const name = this.#queueName(route, lane);
    return this.#urls.of(name, `queue ${name} of route ${route}`);
  }

}

/**
 * SQS refuses a body holding a character outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
 * #x10000-#x10FFFF (a prompt may hold U+FFFF), and fauxqs, the embedded stack's SQS, refuses any
 * past U+FFFF as well (every emoji). JSON escapes them instead, each UTF-16 unit as \uXXXX: the
 * body parses to the very same message.
 */
export function messageBody(message: JobMessage): string {
  return JSON.stringify(message).replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Groups messages into SendMessageBatch calls by count and size. */
export function chunkMessages<T extends { body: string }>(messages: readonly T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = Buffer.byteLength(m.body, "utf8");
    if (current.length === MAX_ENTRIES || (current.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

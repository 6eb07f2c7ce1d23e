import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { RetryableError } from "../core/errors.ts";
import { MAX_BACKOFF_SECONDS, webhookEventSchema, type WebhookMessage } from "../core/webhooks.ts";
import type { WebhookEvent, WebhookOutbox, WebhookRetryQueue } from "../ports.ts";
import { translateSdkError } from "./errors.ts";
import { QueueUrls } from "./sqs-queue-urls.ts";

/** SendMessageBatch's most entries; an event's message is a few hundred bytes, far from its 256 KiB. */
const MAX_ENTRIES = 10;

/**
 * The webhooks queue: the outbox the batch transitions put events on, and what the delivery
 * function does with it besides reading (its event source mapping reads and deletes).
 */
export class SqsWebhookOutbox implements WebhookOutbox, WebhookRetryQueue {
  readonly #client: SQSClient;
  readonly #queueName: string;
  readonly #urls: QueueUrls;

  constructor(options: { client: SQSClient; queueName: string }) {
    this.#client = options.client;
    this.#queueName = options.queueName;
    this.#urls = new QueueUrls(options.client);
  }

  async enqueue(events: readonly WebhookEvent[]): Promise<void> {
    // A malformed event would be dropped by the delivery function: its producer hears of it now instead.
    for (const event of events) {
      const checked = webhookEventSchema.safeParse(event);
      if (!checked.success) throw new Error(`webhook event ${String(event.id)} is malformed: ${checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
    await this.#send(events.map((event) => ({ kind: "event", event })), 0);
  }

  async enqueueDeliveries(deliveries: readonly { readonly event: WebhookEvent; readonly endpointId: string }[], delaySeconds: number): Promise<void> {
    await this.#send(deliveries.map(({ event, endpointId }) => ({ kind: "delivery", event, endpoint_id: endpointId })), Math.min(900, Math.round(delaySeconds)));
  }

  async retryLater(receiptHandle: string, seconds: number): Promise<void> {
    const url = await this.#queueUrl();
    await this.#client
      .send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: receiptHandle, VisibilityTimeout: Math.min(MAX_BACKOFF_SECONDS, Math.round(seconds)) }))
      .catch((error: unknown) => {
        throw translateSdkError(error, "hide webhook message until its retry");
      });
  }

  async #send(messages: readonly WebhookMessage[], delaySeconds: number): Promise<void> {
    if (messages.length === 0) return;
    const url = await this.#queueUrl();
    const chunks = Array.from({ length: Math.ceil(messages.length / MAX_ENTRIES) }, (_, i) => messages.slice(i * MAX_ENTRIES, (i + 1) * MAX_ENTRIES));
    await Promise.all(chunks.map((chunk) => this.#sendChunk(url, chunk, delaySeconds)));
  }

  async #sendChunk(url: string, chunk: readonly WebhookMessage[], delaySeconds: number): Promise<void> {
    let pending = chunk;
    for (let attempt = 0; attempt < 3 && pending.length > 0; attempt++) {
      const out = await this.#client
        .send(new SendMessageBatchCommand({ QueueUrl: url, Entries: pending.map((m, i) => ({ Id: String(i), MessageBody: JSON.stringify(m), DelaySeconds: delaySeconds })) }))
        .catch((error: unknown) => {
          throw translateSdkError(error, "send to the webhooks queue");
        });
      const failed = new Set((out.Failed ?? []).map((f) => Number(f.Id)));
      pending = pending.filter((_, i) => failed.has(i));
    }
    if (pending.length > 0) throw new RetryableError("unavailable", `SQS refused ${pending.length} webhook messages`);
  }

  #queueUrl(): Promise<string> {
    return this.#urls.of(this.#queueName);
  }

}

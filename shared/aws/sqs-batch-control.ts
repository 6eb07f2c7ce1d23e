import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { BatchControlMessage } from "../core/batch-control.ts";
import type { BatchControlQueue } from "../ports.ts";
import { QueueUrls, translateQueueError } from "./sqs-queue-urls.ts";

/** The batch-control queue: one SendMessage per step (an ingest at create, a finalize per batch). */
export class SqsBatchControlQueue implements BatchControlQueue {
  readonly #client: SQSClient;
  readonly #queueName: string;
  readonly #urls: QueueUrls;

  constructor(options: { client: SQSClient; queueName: string }) {
    this.#client = options.client;
    this.#queueName = options.queueName;
    this.#urls = new QueueUrls(options.client);
  }

  async send(message: BatchControlMessage): Promise<void> {
    const url = await this.#queueUrl();
    await this.#client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify(message) })).catch((error: unknown) => {
      throw translateQueueError(error, `send ${message.step} of batch ${message.batch_id}`);
    });
  }

  #queueUrl(): Promise<string> {
    return this.#urls.of(this.#queueName);
  }

}

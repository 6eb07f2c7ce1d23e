import { GetQueueUrlCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { BatchControlMessage } from "../core/batch-control.ts";
import type { BatchControlQueue } from "../ports.ts";
import { translateQueueError } from "./sqs-job-queue.ts";

/** The batch-control queue: one SendMessage per step (an ingest at create, a finalize per batch). */
export class SqsBatchControlQueue implements BatchControlQueue {
  readonly #client: SQSClient;
  readonly #queueName: string;
  #url: Promise<string> | undefined;

  constructor(options: { client: SQSClient; queueName: string }) {
    this.#client = options.client;
    this.#queueName = options.queueName;
  }

  async send(message: BatchControlMessage): Promise<void> {
    const url = await this.#queueUrl();
    await this.#client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify(message) })).catch((error: unknown) => {
      throw translateQueueError(error, `send ${message.step} of batch ${message.batch_id}`);
    });
  }

  #queueUrl(): Promise<string> {
    this.#url ??= this.#client
      .send(new GetQueueUrlCommand({ QueueName: this.#queueName }))
      .then((out) => {
        if (!out.QueueUrl) throw new Error(`no URL for queue ${this.#queueName}`);
        return out.QueueUrl;
      })
      .catch((error: unknown) => {
        this.#url = undefined;
        throw translateQueueError(error, `queue ${this.#queueName}`);
      });
    return this.#url;
  }
}

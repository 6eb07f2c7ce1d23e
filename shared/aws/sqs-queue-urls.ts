import { GetQueueUrlCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { RetryableError } from "../core/errors.ts";
import { translateSdkError } from "./errors.ts";

/** Queue URLs by name, asked of SQS once and kept; an ask that failed is forgotten, so the next one asks again. */
export class QueueUrls {
  readonly #client: SQSClient;
  readonly #urls = new Map<string, Promise<string>>();

  constructor(client: SQSClient) {
    this.#client = client;
  }

  /** `what` names the queue in an error (a route's, the webhooks'...). */
  of(name: string, what = `queue ${name}`): Promise<string> {
    let url = this.#urls.get(name);
    if (!url) {
      url = this.#client
        .send(new GetQueueUrlCommand({ QueueName: name }))
        .then((out) => {
          if (!out.QueueUrl) throw new Error(`no URL for queue ${name}`);
          return out.QueueUrl;
        })
        .catch((error: unknown) => {
          this.#urls.delete(name);
          throw translateQueueError(error, what);
        });
      this.#urls.set(name, url);
    }
    return url;
  }
}

/**
 * A missing queue is a 400 the SDK does not see as retryable, yet it is a deployment problem
 * (the queue is in the template, not there yet), not a bug: the caller may try again.
 */
export function translateQueueError(error: unknown, what: string): unknown {
  const name = typeof error === "object" && error !== null ? (error as { name?: unknown }).name : undefined;
  if (name === "QueueDoesNotExist" || name === "AWS.SimpleQueueService.NonExistentQueue") {
    return new RetryableError("unavailable", `${what}: the queue does not exist`, error);
  }
  return translateSdkError(error, what);
}

import { GetMetricDataCommand, type CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { RetryableError } from "../core/errors.ts";
import type { QueueDepth } from "../core/metrics.ts";
import type { QueueMetrics } from "../ports.ts";
import { QueueUrls, translateQueueError } from "./sqs-queue-urls.ts";
import { translateSdkError } from "./errors.ts";

/** Seconds since a queue's oldest message was sent; undefined when there is none (or no datapoint). */
export type OldestMessageAge = (queueName: string, now: Date) => Promise<number | undefined>;

/**
 * A queue's gauges: its depths from GetQueueAttributes (SQS in AWS, fauxqs locally, the same
 * call), the age of its oldest message from `oldestAge` (SQS has no attribute for it: CloudWatch's
 * ApproximateAgeOfOldestMessage in AWS, fauxqs' inspection locally).
 */
export class SqsQueueMetrics implements QueueMetrics {
  readonly #client: SQSClient;
  readonly #urls: QueueUrls;
  readonly #oldestAge: OldestMessageAge;

  constructor(options: { client: SQSClient; oldestAge: OldestMessageAge }) {
    this.#client = options.client;
    this.#urls = new QueueUrls(options.client);
    this.#oldestAge = options.oldestAge;
  }

  async depth(queueName: string): Promise<QueueDepth> {
    const QueueUrl = await this.#urls.of(queueName);
    let out;
    try {
      out = await this.#client.send(
        new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"] }),
      );
    } catch (error) {
      throw translateQueueError(error, `queue ${queueName}`);
    }
    const count = (name: string) => Number(out.Attributes?.[name as keyof typeof out.Attributes] ?? 0);
    return { visible: count("ApproximateNumberOfMessages"), inFlight: count("ApproximateNumberOfMessagesNotVisible"), delayed: count("ApproximateNumberOfMessagesDelayed") };
  }

  oldestMessageAgeSeconds(queueName: string, now: Date): Promise<number | undefined> {
    return this.#oldestAge(queueName, now);
  }
}

/**
 * AWS: AWS/SQS ApproximateAgeOfOldestMessage, the latest 1-minute Maximum of the last 5 minutes
 * (SQS publishes it every minute while the queue is active; an empty queue has none).
 */
export function cloudWatchOldestAge(client: CloudWatchClient): OldestMessageAge {
  return async (queueName, now) => {
    let out;
    try {
      out = await client.send(
        new GetMetricDataCommand({
          StartTime: new Date(now.getTime() - 5 * 60_000),
          EndTime: now,
          ScanBy: "TimestampDescending",
          MetricDataQueries: [
            { Id: "age", MetricStat: { Metric: { Namespace: "AWS/SQS", MetricName: "ApproximateAgeOfOldestMessage", Dimensions: [{ Name: "QueueName", Value: queueName }] }, Period: 60, Stat: "Maximum" } },
          ],
        }),
      );
    } catch (error) {
      throw translateSdkError(error, `CloudWatch ApproximateAgeOfOldestMessage of ${queueName}`);
    }
    return out.MetricDataResults?.[0]?.Values?.[0];
  };
}

type FauxqsMessage = { readonly sentTimestamp?: number };
type FauxqsQueue = { readonly messages?: { readonly ready?: readonly FauxqsMessage[]; readonly delayed?: readonly FauxqsMessage[]; readonly inflight?: readonly { readonly message?: FauxqsMessage }[] } };

/**
 * The embedded stack: fauxqs' inspection endpoint (GET /_fauxqs/queues/<name>, which changes
 * nothing) lists every message with its sentTimestamp; the oldest of those waiting, delayed or in
 * flight is what CloudWatch's metric approximates (it also counts every message not deleted).
 */
export function fauxqsOldestAge(sqsEndpoint: string): OldestMessageAge {
  return async (queueName, now) => {
    const url = new URL(`/_fauxqs/queues/${encodeURIComponent(queueName)}`, sqsEndpoint);
    let response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new RetryableError("unavailable", `fauxqs inspection of ${queueName}: ${(error as Error).message}`, error);
    }
    if (!response.ok) throw new RetryableError("unavailable", `fauxqs inspection of ${queueName}: HTTP ${response.status}`);
    const queue = (await response.json()) as FauxqsQueue;
    const sent = [...(queue.messages?.ready ?? []), ...(queue.messages?.delayed ?? []), ...(queue.messages?.inflight ?? []).map((m) => m.message ?? {})].flatMap((m) =>
      m.sentTimestamp === undefined ? [] : [m.sentTimestamp],
    );
    if (sent.length === 0) return undefined;
    return Math.max(0, (now.getTime() - Math.min(...sent)) / 1000);
  };
}

import { setTimeout as delay } from "node:timers/promises";
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSEvent, SQSRecord } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Invoker, type MappingSettings, type RunningEventSourceMapping, startEventSourceMapping } from "#local/event-source-mapping";
import type { InvokeResult } from "#local/lambda-sqs-event";
import { type LocalSqs, localQueueArn, localSqsClient, startLocalSqs } from "#local/sqs";
import { uniqueSuffix } from "../helpers/local-aws.ts";

type Respond = (records: SQSRecord[], seen: FakeFunction) => Promise<InvokeResult> | InvokeResult;

/** A fake function: records every event and answers with `respond`; tests wait on what it saw. */
class FakeFunction {
  readonly events: { at: number; records: SQSRecord[] }[] = [];
  private inFlight = 0;
  peakConcurrency = 0;
  private waiters: (() => void)[] = [];

  private readonly respond: Respond;

  constructor(respond: Respond = () => ({ payload: "" })) {
    this.respond = respond;
  }

  readonly invoke: Invoker = async (_name, event: SQSEvent) => {
    this.inFlight += 1;
    this.peakConcurrency = Math.max(this.peakConcurrency, this.inFlight);
    try {
      this.events.push({ at: Date.now(), records: event.Records });
      return await this.respond(event.Records, this);
    } finally {
      this.inFlight -= 1;
      for (const wake of this.waiters.splice(0)) wake();
    }
  };

  /** Deliveries of a message body so far. */
  deliveries(body: string): SQSRecord[] {
    return this.events.flatMap((e) => e.records).filter((r) => r.body === body);
  }

  /** Resolves once `condition` holds after an invocation has returned. */
  async until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => e.records.map((r) => r.body)))}`);
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), delay(deadline - Date.now())]);
    }
  }
}

const failures = (ids: string[]) => ({ payload: JSON.stringify({ batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) }) });

describe("event source mapping against fauxqs", () => {
  let sqs: LocalSqs;
  let client: SQSClient;
  const running: RunningEventSourceMapping[] = [];

  beforeAll(async () => {
    sqs = await startLocalSqs({ port: 0 });
    client = localSqsClient(sqs.url);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((m) => m.stop()));
  });
  afterAll(async () => {
    client.destroy();
    await sqs.close();
  });

  async function createQueue(attributes: Record<string, string> = {}): Promise<{ name: string; url: string }> {
    const name = `esm-${uniqueSuffix()}`;
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!QueueUrl) throw new Error("no QueueUrl");
    return { name, url: QueueUrl };
  }

  async function send(url: string, bodies: readonly string[]): Promise<void> {
    for (let i = 0; i < bodies.length; i += 10) {
      const entries = bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body }));
      await client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
    }
  }

  function start(queue: { name: string; url: string }, fn: FakeFunction, settings: Partial<MappingSettings>): void {
    running.push(
      startEventSourceMapping({
        sqs: client,
        queueUrl: queue.url,
        queueArn: localQueueArn(queue.name),
        mapping: { functionName: "fn", batchSize: 10, maximumBatchingWindowSeconds: 0, maximumConcurrency: 2, reportBatchItemFailures: true, ...settings },
        invoke: fn.invoke,
        wakeReceivers: () => sqs.wakeReceivers(),
      }),
    );
  }

  const bodies = (n: number, tag = "m") => Array.from({ length: n }, (_, i) => `${tag}${i}`);
  const delivered = (fn: FakeFunction) => fn.events.flatMap((e) => e.records.map((r) => r.body));

  it("sends Lambda's event shape", async () => {
    const queue = await createQueue();
    const fn = new FakeFunction();
    start(queue, fn, {});
    await send(queue.url, ["hello"]);
    await fn.until(() => fn.events.length === 1, "one invocation");
    expect(fn.events[0]?.records[0]).toEqual({
      messageId: expect.any(String),
      receiptHandle: expect.any(String),
      body: "hello",
      attributes: {
        ApproximateReceiveCount: "1",
        SentTimestamp: expect.stringMatching(/^\d+$/),
        SenderId: expect.any(String),
        ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d+$/),
      },
      messageAttributes: {},
      md5OfBody: "5d41402abc4b2a76b9719d911017c592",
      eventSource: "aws:sqs",
      eventSourceARN: localQueueArn(queue.name),
      awsRegion: "us-east-1",
    });
  });

  it("refuses, as AWS does, BatchSize 100 with no window: no poller starts", async () => {
    const queue = await createQueue();
    const fn = new FakeFunction();
    expect(() => start(queue, fn, { batchSize: 100, maximumBatchingWindowSeconds: 0 })).toThrow(
      "InvalidParameterValueException: Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
    );
    await send(queue.url, ["unread"]);
    // Nothing polls: the message is still there for a receive of our own.
    const { Messages } = await client.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 5 }));
    expect(Messages?.map((m) => m.Body)).toEqual(["unread"]);
    expect(fn.events).toEqual([]);
  });

  it("never puts more than BatchSize records in an event", async () => {
    const queue = await createQueue();
    const fn = new FakeFunction();
    await send(queue.url, bodies(23));
    start(queue, fn, { batchSize: 4, maximumBatchingWindowSeconds: 1 });
    await fn.until(() => delivered(fn).length === 23, "23 deliveries");
    expect(Math.max(...fn.events.map((e) => e.records.length))).toBeLessThanOrEqual(4);
    expect(new Set(delivered(fn))).toEqual(new Set(bodies(23)));
  });

  it("holds a batch for the window after its first message", async () => {
    const queue = await createQueue();
    const fn = new FakeFunction();
    start(queue, fn, { batchSize: 10, maximumBatchingWindowSeconds: 1, maximumConcurrency: 2 });
    const sentAt = Date.now();
    await send(queue.url, ["early"]);
    await fn.until(() => fn.events.length === 1, "the window to close");
    expect(fn.events[0]!.at - sentAt).toBeGreaterThanOrEqual(950);
  });

  it("sends a full batch at once, without waiting for the window", async () => {
    const queue = await createQueue();
    const fn = new FakeFunction();
    start(queue, fn, { batchSize: 10, maximumBatchingWindowSeconds: 20, maximumConcurrency: 2 });
    await send(queue.url, bodies(10));
    await fn.until(() => fn.events.length === 1, "a full batch", 10_000);
    expect(fn.events[0]?.records).toHaveLength(10);
  });

  it("runs at most MaximumConcurrency invocations at once", async () => {
    const queue = await createQueue();
    // Each invocation takes a while, so that pollers overlap whenever they can.
    const fn = new FakeFunction(async () => {
      await delay(50);
      return { payload: "" };
    });
    await send(queue.url, bodies(30));
    start(queue, fn, { batchSize: 1, maximumConcurrency: 3 });
    await fn.until(() => delivered(fn).length === 30, "30 deliveries");
    expect(fn.peakConcurrency).toBe(3);
  });

  it("deletes what succeeded and redelivers the reported failures after the visibility timeout", async () => {
    const queue = await createQueue({ VisibilityTimeout: "1" });
    const fn = new FakeFunction((records, seen) => failures(records.filter((r) => r.body === "bad" && seen.deliveries("bad").length === 1).map((r) => r.messageId)));
    start(queue, fn, { batchSize: 3, maximumConcurrency: 2 });
    await send(queue.url, ["good1", "bad", "good2"]);
    await fn.until(() => fn.deliveries("bad").length === 2, "the failed message again");
    const [first, second] = fn.deliveries("bad");
    expect(second?.attributes.ApproximateReceiveCount).toBe("2");
    expect(Number(second?.attributes.ApproximateFirstReceiveTimestamp)).toBe(Number(first?.attributes.ApproximateFirstReceiveTimestamp));
    // The good ones became invisible with "bad": had they not been deleted, they would be back with it.
    expect(fn.deliveries("good1")).toHaveLength(1);
    expect(fn.deliveries("good2")).toHaveLength(1);
  });

  it("redelivers the whole batch when the response names a message not in it", async () => {
    const queue = await createQueue({ VisibilityTimeout: "1" });
    const fn = new FakeFunction((_, seen) => (seen.events.length === 1 ? failures(["not-a-message-id"]) : { payload: "" }));
    start(queue, fn, { batchSize: 2 });
    await send(queue.url, ["x", "y"]);
    await fn.until(() => fn.deliveries("x").length === 2 && fn.deliveries("y").length === 2, "both again");
  });

  it("redelivers every message of a batch whose invocation failed", async () => {
    const queue = await createQueue({ VisibilityTimeout: "1" });
    const fn = new FakeFunction((_, seen) => (seen.events.length === 1 ? { functionError: "Unhandled", payload: '{"errorMessage":"boom"}' } : { payload: "" }));
    start(queue, fn, { batchSize: 2 });
    await send(queue.url, ["p", "q"]);
    await fn.until(() => fn.deliveries("p").length === 2 && fn.deliveries("q").length === 2, "both again");
    expect(fn.deliveries("p")[1]?.attributes.ApproximateReceiveCount).toBe("2");
  });

  it("ends in the dead-letter queue after maxReceiveCount failed deliveries", async () => {
    const dlq = await createQueue();
    const queue = await createQueue({
      VisibilityTimeout: "1",
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: localQueueArn(dlq.name), maxReceiveCount: 2 }),
    });
    const fn = new FakeFunction(() => ({ functionError: "Unhandled", payload: "{}" }));
    start(queue, fn, { batchSize: 1 });
    await send(queue.url, ["doomed"]);
    const { Messages } = await client.send(new ReceiveMessageCommand({ QueueUrl: dlq.url, WaitTimeSeconds: 10 }));
    expect(Messages?.map((m) => m.Body)).toEqual(["doomed"]);
    expect(fn.deliveries("doomed")).toHaveLength(2);
  });

  it("stops at once while idle, and hands back what it gathered but never invoked", async () => {
    const queue = await createQueue();
    const fn = new FakeFunction();
    start(queue, fn, { batchSize: 10, maximumBatchingWindowSeconds: 20 });
    await send(queue.url, ["held"]);
    const stopping = running.splice(0).map((m) => m.stop());
    await Promise.all(stopping);
    expect(fn.events).toHaveLength(0);
    // Visible again at once, not after the queue's 30 s visibility timeout.
    const { Messages } = await client.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 5 }));
    expect(Messages?.map((m) => m.Body)).toEqual(["held"]);
  });
});

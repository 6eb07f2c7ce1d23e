import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkMessages, messageBody, SqsJobQueue } from "#shared/aws/sqs-job-queue";
import { loadConfig, type Config } from "#shared/config";
import { BatchlineError, RetryableError } from "#shared/core/errors";
import type { JobMessage } from "#shared/core/jobs";
import { localClientConfig, pollUntil, startFauxqs, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";

function message(jobId: string, prompt = `Summarise document ${jobId}.`): JobMessage {
  return {
    version: 1,
    job_id: jobId,
    tenant: "acme",
    model: "llama-2-7b",
    prompt_tokens: 12,
    priority: 5,
    submitted_at: "2026-11-27T12:00:00.000Z",
    request: { prompt, max_tokens: 64, temperature: 0.2, stop: ["\n"] },
  };
}

describe("chunkMessages", () => {
  const body = (bytes: number) => ({ body: "x".repeat(bytes) });

  it("puts at most 10 messages in one SendMessageBatch", () => {
    // Act
    const chunks = chunkMessages(Array.from({ length: 25 }, () => body(10)));

    // Assess
    expect(chunks.map((c) => c.length)).toEqual([10, 10, 5]);
  });

  it("starts a new batch before the bodies pass 250 KiB", () => {
    // Act
    const chunks = chunkMessages([body(100 * 1024), body(100 * 1024), body(50 * 1024), body(1)]);

    // Assess
    expect(chunks.map((c) => c.map((m) => m.body.length))).toEqual([[100 * 1024, 100 * 1024, 50 * 1024], [1]]);
  });

  it("counts bytes, not characters", () => {
    // Prepare: 3 bytes per character in UTF-8
    const wide = { body: "€".repeat(50 * 1024) };

    // Act
    const chunks = chunkMessages([wide, wide]);

    // Assess
    expect(chunks.map((c) => c.length)).toEqual([1, 1]);
  });

  it("sends a message over the limit alone, and nothing for no messages", () => {
    expect(chunkMessages([body(10), body(300 * 1024), body(10)]).map((c) => c.length)).toEqual([1, 1, 1]);
    expect(chunkMessages([])).toEqual([]);
  });

  it("keeps the messages in order", () => {
    // Prepare
    const messages = Array.from({ length: 23 }, (_, i) => ({ body: String(i) }));

    // Act
    const chunks = chunkMessages(messages);

    // Assess
    expect(chunks.flat()).toEqual(messages);
  });
});

describe("messageBody", () => {
  it("is the message's JSON as JSON.stringify writes it, for text SQS takes", () => {
    // Prepare
    const plain = message("job_plain", "Résumé: naïve café, 東京, tab\t and quote \" kept.");

    // Act
    const body = messageBody(plain);

    // Assess
    expect(body).toBe(JSON.stringify(plain));
  });

  it("escapes what SQS or fauxqs refuse in a body (past U+FFFF, U+FFFE, U+FFFF), and parses back to the same message", () => {
    // Prepare
    const unicode = message("job_unicode", "rocket 🚀, fraktur 𝔘, noncharacters \uFFFE\uFFFF, lone \uD800");

    // Act
    const body = messageBody(unicode);

    // Assess
    expect(body).toContain("rocket \\ud83d\\ude80, fraktur \\ud835\\udd18, noncharacters \\ufffe\\uffff, lone \\ud800");
    expect(body).toMatch(/^[\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]*$/);
    expect(JSON.parse(body)).toEqual(unicode);
  });
});

// What the JobQueue contract (test/contract/job-queue.ts) cannot say of the memory queue too: the
// wire, SendMessageBatch's limits, SQS's timing, a queue that is missing.
describe("SqsJobQueue against fauxqs", () => {
  const prefix = `it-${uniqueSuffix()}`;
  let server: LocalServer;
  let sqs: SQSClient;
  let config: Config;

  beforeAll(async () => {
    server = await startFauxqs();
    sqs = new SQSClient({ ...localClientConfig(server.endpoint), useQueueUrlAsEndpoint: false });
    config = loadConfig({ BATCHLINE_RESOURCE_PREFIX: prefix, BATCHLINE_WS_ENDPOINT: "http://127.0.0.1:1" });
  });
  afterAll(async () => {
    sqs.destroy();
    await server.close();
  });

  /** A route of its own for one test, with its queue created under the configured name. */
  async function routeWithQueue(): Promise<{ route: string; queueUrl: string }> {
    const route = `route-${uniqueSuffix()}`;
    const out = await sqs.send(new CreateQueueCommand({ QueueName: config.queueName(route), Attributes: { VisibilityTimeout: "60" } }));
    if (!out.QueueUrl) throw new Error("CreateQueue gave no URL");
    return { route, queueUrl: out.QueueUrl };
  }

  /** Receives (and deletes) until `count` bodies arrived. */
  async function receiveAll(queueUrl: string, count: number): Promise<string[]> {
    const bodies: string[] = [];
    await pollUntil(async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      const received = out.Messages ?? [];
      bodies.push(...received.map((m) => m.Body ?? ""));
      if (received.length > 0) {
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: received.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }));
      }
      return bodies.length >= count ? bodies : undefined;
    }, `${count} messages on ${queueUrl}`);
    return bodies;
  }

  const byJobId = (a: JobMessage, b: JobMessage) => a.job_id.localeCompare(b.job_id);

  it("sends a message whose prompt holds an emoji, which fauxqs would refuse as it is", async () => {
    // Prepare
    const { route, queueUrl } = await routeWithQueue();
    const queue = new SqsJobQueue({ client: sqs, queueName: config.queueName });
    const withEmoji = message(`job_emoji_${uniqueSuffix()}`, "Write a haiku about queues 🚀");

    // Act
    await queue.enqueue(route, [withEmoji]);

    // Assess
    const [body] = await receiveAll(queueUrl, 1);
    expect(body).toContain("queues \\ud83d\\ude80");
    expect(JSON.parse(body ?? "")).toEqual(withEmoji);
  });

  it("enqueues messages that need batches split by size, not count", async () => {
    // Prepare: about 120 KiB each, so two fit in one SendMessageBatch
    const { route, queueUrl } = await routeWithQueue();
    const messages = Array.from({ length: 5 }, (_, i) => message(`job_big${i}_${uniqueSuffix()}`, `${i} ${"lorem ipsum ".repeat(10_000)}`));
    const queue = new SqsJobQueue({ client: sqs, queueName: config.queueName });

    // Act
    await queue.enqueue(route, messages);

    // Assess
    const bodies = await receiveAll(queueUrl, 5);
    expect(bodies.map((b) => JSON.parse(b) as JobMessage).toSorted(byJobId)).toEqual(messages.toSorted(byJobId));
  });

  it("deletes messages ten to a DeleteMessageBatch call", async () => {
    // Prepare: a client of its own that notes each command it sends
    const { route, queueUrl } = await routeWithQueue();
    const counted = new SQSClient({ ...localClientConfig(server.endpoint), useQueueUrlAsEndpoint: false });
    const commands: string[] = [];
    counted.middlewareStack.add((next, context) => (args) => {
      commands.push(String(context.commandName));
      return next(args);
    }, { step: "initialize" });
    const queue = new SqsJobQueue({ client: counted, queueName: config.queueName, deleteLingerMs: 100 });
    await queue.enqueue(route, Array.from({ length: 12 }, (_, i) => message(`job_del${i}_${uniqueSuffix()}`)));
    const received: string[] = [];
    await pollUntil(async () => {
      received.push(...(await queue.receive(route, 10, 1)).map((m) => m.receiptHandle));
      return received.length >= 12 ? received : undefined;
    }, "12 messages received");
    commands.length = 0;

    // Act: twelve deletes at once
    await Promise.all(received.map((handle) => queue.delete(route, handle)));

    // Assess
    expect(commands).toEqual(["DeleteMessageBatchCommand", "DeleteMessageBatchCommand"]);
    const left = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }));
    expect(left.Attributes).toMatchObject({ ApproximateNumberOfMessages: "0", ApproximateNumberOfMessagesNotVisible: "0" });
    counted.destroy();
  });

  it("hides a message released with a delay until the delay passes", async () => {
    // Prepare
    const { route } = await routeWithQueue();
    const queue = new SqsJobQueue({ client: sqs, queueName: config.queueName });
    await queue.enqueue(route, [message(`job_release_${uniqueSuffix()}`)]);
    const [received] = await pollUntil(async () => nonEmpty(await queue.receive(route, 10, 1)), "the message");

    // Act
    await queue.release(route, received?.receiptHandle ?? "", 1);
    const atOnce = await queue.receive(route, 10, 0);
    const later = await pollUntil(async () => nonEmpty(await queue.receive(route, 10, 1)), "the released message");

    // Assess
    expect(atOnce).toEqual([]);
    expect(later.map((m) => m.messageId)).toEqual([received?.messageId]);
  });

  it("hides a message requeued with a delay until the delay passes", async () => {
    // Prepare
    const { route } = await routeWithQueue();
    const queue = new SqsJobQueue({ client: sqs, queueName: config.queueName });
    await queue.enqueue(route, [message(`job_requeue_${uniqueSuffix()}`)]);
    const [received] = await pollUntil(async () => nonEmpty(await queue.receive(route, 10, 1)), "the message");

    // Act
    await queue.requeue(route, { body: received?.body ?? "", receiptHandle: received?.receiptHandle ?? "" }, 1);
    const atOnce = await queue.receive(route, 10, 0);
    const later = await pollUntil(async () => nonEmpty(await queue.receive(route, 10, 1)), "the requeued message");

    // Assess
    expect(atOnce).toEqual([]);
    expect(later.map((m) => m.body)).toEqual([received?.body]);
  });

  it("fails with a RetryableError when the route's queue does not exist, and finds it once it does", async () => {
    // Prepare
    const route = `route-missing-${uniqueSuffix()}`;
    const queue = new SqsJobQueue({ client: sqs, queueName: config.queueName });
    const first = message(`job_missing_${uniqueSuffix()}`);

    // Act
    const missing = await queue.enqueue(route, [first]).then(() => undefined, (error: unknown) => error);
    const created = await sqs.send(new CreateQueueCommand({ QueueName: config.queueName(route) }));
    await queue.enqueue(route, [first]);

    // Assess
    expect(missing).toBeInstanceOf(BatchlineError);
    expect(missing).toBeInstanceOf(RetryableError);
    expect(missing).toMatchObject({ code: "unavailable", retryable: true });
    expect(String((missing as Error).message)).toContain(config.queueName(route));
    expect(await receiveAll(created.QueueUrl ?? "", 1)).toEqual([JSON.stringify(first)]);
  });
});

const nonEmpty = <T>(items: readonly T[]): readonly T[] | undefined => (items.length > 0 ? items : undefined);

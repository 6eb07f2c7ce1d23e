import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqsWebhookOutbox } from "#shared/aws/sqs-webhook-outbox";
import { RetryableError } from "#shared/core/errors";
import { webhookMessageSchema } from "#shared/core/webhooks";
import type { WebhookEvent } from "#shared/ports";
import { localClientConfig, startFauxqs, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";

// SqsWebhookOutbox on fauxqs: what the batch transitions put, what the delivery function sends
// for an endpoint's retries, and the visibility it sets as backoff.
let server: LocalServer;
let sqs: SQSClient;

beforeAll(async () => {
  server = await startFauxqs();
  sqs = new SQSClient({ ...localClientConfig(server.endpoint), useQueueUrlAsEndpoint: false });
});
afterAll(async () => {
  sqs?.destroy();
  await server?.close();
});

async function newQueue() {
  const name = `contract-webhooks-${uniqueSuffix()}`;
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: "30" } }));
  if (!QueueUrl) throw new Error("no queue URL");
  return { url: QueueUrl, outbox: new SqsWebhookOutbox({ client: sqs, queueName: name }) };
}

const event = (n: number): WebhookEvent => ({ id: `evt_${n.toString(16).padStart(4, "0")}`, tenant: "acme", type: "batch.completed", created_at: 1_800_000_000 + n, data: { id: `batch_${n}` } });

async function receiveAll(url: string, atLeast: number, timeoutMs = 10_000) {
  const bodies: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (bodies.length < atLeast && Date.now() < deadline) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["All"] }));
    bodies.push(...(out.Messages ?? []).map((m) => m.Body ?? ""));
  }
  return bodies.map((b) => webhookMessageSchema.parse(JSON.parse(b)));
}

describe("SqsWebhookOutbox", () => {
  it("puts one message per event, past SendMessageBatch's 10 a call", async () => {
    const { url, outbox } = await newQueue();
    const events = Array.from({ length: 23 }, (_, i) => event(i));
    await outbox.enqueue(events);
    await outbox.enqueue([]);
    const messages = await receiveAll(url, 23);
    expect(messages).toHaveLength(23);
    expect(messages.every((m) => m.kind === "event")).toBe(true);
    expect(messages.map((m) => m.event.id).sort()).toEqual(events.map((e) => e.id).sort());
  });

  it("sends an endpoint's delivery after its delay", async () => {
    const { url, outbox } = await newQueue();
    await outbox.enqueueDeliveries([{ event: event(1), endpointId: "we_1" }], 2);
    expect(await receiveAll(url, 1, 500)).toEqual([]);
    const later = await receiveAll(url, 1, 10_000);
    expect(later).toEqual([{ kind: "delivery", event: event(1), endpoint_id: "we_1" }]);
  });

  it("hides a received message for the backoff it is given", async () => {
    const { url, outbox } = await newQueue();
    await outbox.enqueue([event(2)]);
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5 }));
    const handle = out.Messages?.[0]?.ReceiptHandle;
    if (!handle) throw new Error("nothing received");
    await outbox.retryLater(handle, 1);
    // Back after 1 s, not after the queue's 30 s visibility timeout.
    const again = await receiveAll(url, 1, 10_000);
    expect(again.map((m) => m.event.id)).toEqual([event(2).id]);
  });

  it("refuses a malformed event before it reaches the queue", async () => {
    const { outbox } = await newQueue();
    await expect(outbox.enqueue([{ ...event(4), id: "4" }])).rejects.toThrow(/webhook event 4 is malformed: id/);
  });

  it("says a missing queue is a retryable failure", async () => {
    const outbox = new SqsWebhookOutbox({ client: sqs, queueName: `missing-${uniqueSuffix()}` });
    await expect(outbox.enqueue([event(3)])).rejects.toBeInstanceOf(RetryableError);
    await expect(outbox.enqueue([event(3)])).rejects.toThrow(/does not exist/);
  });
});

import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RequestMeter } from "#local/request-meter";
import { type LocalSqs, localSqsClient, startLocalSqs } from "#local/sqs";
import { pollUntil, uniqueSuffix } from "../helpers/local-aws.ts";

/**
 * SQS's long poll as AWS answers it: a ReceiveMessage waiting on a queue comes back before its
 * WaitTimeSeconds only with a message. fauxqs woke every waiter for each message and all but one
 * came back empty at once.
 */
describe("the embedded SQS's long polls", () => {
  const meter = new RequestMeter();
  let sqs: LocalSqs;
  beforeAll(async () => {
    sqs = await startLocalSqs({ port: 0, meter });
  });
  afterAll(async () => {
    await sqs.close();
  });

  it("wakes one waiting receive for one message; the others wait out their WaitTimeSeconds", async () => {
    // Prepare: three receives waiting 2 s on one queue.
    const client = localSqsClient(sqs.url);
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: `long-poll-${uniqueSuffix()}` }));
    const receivesBefore = meter.read().requests.sqs?.ReceiveMessage ?? 0;
    const startedMs = performance.now();
    const receives = Array.from({ length: 3 }, () =>
      client.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 2, MaxNumberOfMessages: 10 })).then((out) => ({ messages: out.Messages ?? [], afterMs: performance.now() - startedMs })),
    );
    await pollUntil(async () => ((meter.read().requests.sqs?.ReceiveMessage ?? 0) - receivesBefore >= 3 ? true : undefined), "three receives waiting");

    // Act
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: "one" }));
    const answers = await Promise.all(receives);

    // Assess
    const [withMessage, ...empty] = [...answers].sort((a, b) => b.messages.length - a.messages.length);
    expect(withMessage?.messages.map((m) => m.Body)).toEqual(["one"]);
    expect(withMessage?.afterMs).toBeLessThan(1_900);
    expect(empty.map((a) => a.messages.length)).toEqual([0, 0]);
    for (const a of empty) expect(a.afterMs).toBeGreaterThanOrEqual(1_950);
    client.destroy();
  });
});

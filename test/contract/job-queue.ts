import { expect, it } from "vitest";
import type { JobMessage } from "#shared/core/jobs";
import type { Lane } from "#shared/core/lanes";
import type { JobQueue, ReceivedMessage } from "#shared/ports";
import { pollUntil, uniqueSuffix } from "../helpers/local-aws.ts";
import type { QueueSetup, QueueUnderTest } from "./fixtures.ts";

function message(name: string): JobMessage {
  return {
    version: 1,
    job_id: `job_${name}_${uniqueSuffix()}`,
    tenant: "acme",
    model: "llama-2-7b",
    prompt_tokens: 12,
    priority: 5,
    submitted_at: "2026-11-27T12:00:00.000Z",
    request: { prompt: `Summarise document ${name}.`, max_tokens: 64, temperature: 0.2, stop: ["\n"] },
  };
}

/** What a message's body says: the job message, whatever escapes the queue needed to carry it. */
const sentMessage = (received: ReceivedMessage): unknown => JSON.parse(received.body);
const byJobId = (a: JobMessage, b: JobMessage) => a.job_id.localeCompare(b.job_id);

/** Visibility long enough that a received message never comes back by itself during a test. */
const held: QueueSetup = { visibilityTimeoutSeconds: 60 };
/** Visibility short enough that a received message left alone would come back within a long poll. */
const brief: QueueSetup = { visibilityTimeoutSeconds: 1 };
/** A long poll that outlasts `brief` visibility: what would come back, does within it. */
const OUTLASTS_VISIBILITY_SECONDS = 3;

/** Receives until `count` messages came, each receive taking what is there (SQS may hand out fewer than are visible). */
async function receiveCount(queue: JobQueue, route: string, count: number, lane?: Lane): Promise<ReceivedMessage[]> {
  const received: ReceivedMessage[] = [];
  return pollUntil(async () => {
    received.push(...(await queue.receive(route, 10, 1, lane)));
    return received.length >= count ? received : undefined;
  }, `${count} messages on route ${route}${lane ? ` (${lane} lane)` : ""}`);
}

/**
 * What every JobQueue does, as SQS does it. The memory queue simplifies time: a message released
 * or requeued without delay is visible at once, one released with a delay never comes back by
 * itself, and an in-flight one never becomes visible again; so the suite says only what both do.
 */
export function jobQueueContract(makeQueue: (setup: QueueSetup) => Promise<QueueUnderTest>): void {
  it("gives each enqueued message once, its body the message as JSON, each with an id and receipt of its own", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(held);
    const messages = Array.from({ length: 25 }, (_, i) => message(`m${i}`));

    // Act
    await queue.enqueue(route, messages);
    const received = await receiveCount(queue, route, 25);

    // Assess
    expect((received.map(sentMessage) as JobMessage[]).toSorted(byJobId)).toEqual(messages.toSorted(byJobId));
    expect(new Set(received.map((m) => m.messageId)).size).toBe(25);
    expect(new Set(received.map((m) => m.receiptHandle)).size).toBe(25);
    expect(await queue.receive(route, 10, 0)).toEqual([]);
  });

  it("takes at most the number asked, and never more than 10", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(held);
    await queue.enqueue(route, Array.from({ length: 15 }, (_, i) => message(`m${i}`)));

    // Act
    const three = await pollUntil(async () => nonEmpty(await queue.receive(route, 3, 1)), "a receive of 3");
    const twenty = await pollUntil(async () => nonEmpty(await queue.receive(route, 20, 1)), "a receive of 20");
    const rest = await receiveCount(queue, route, 15 - three.length - twenty.length);

    // Assess
    expect(three.length).toBeLessThanOrEqual(3);
    expect(twenty.length).toBeLessThanOrEqual(10);
    expect(new Set([...three, ...twenty, ...rest].map((m) => m.messageId)).size).toBe(15);
  });

  it("keeps each route's messages on its own queue", async () => {
    // Prepare
    const { queue, routes: [a, b] } = await makeQueue(held);
    const [forA, forB] = [message("a"), message("b")];

    // Act
    await Promise.all([queue.enqueue(a, [forA]), queue.enqueue(b, [forB])]);

    // Assess
    expect((await receiveCount(queue, a, 1)).map(sentMessage)).toEqual([forA]);
    expect((await receiveCount(queue, b, 1)).map(sentMessage)).toEqual([forB]);
  });

  it("keeps each lane's messages on its lane's queue, and says which lane a received message came from; no lane is the batch lane", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(held);
    const [interactive, batch] = [message("interactive"), message("batch")];

    // Act
    await Promise.all([queue.enqueue(route, [interactive], "interactive"), queue.enqueue(route, [batch], "batch")]);
    const fromInteractive = await receiveCount(queue, route, 1, "interactive");
    const fromBatch = await receiveCount(queue, route, 1);

    // Assess
    expect(fromInteractive.map(sentMessage)).toEqual([interactive]);
    expect(fromInteractive.map((m) => m.lane)).toEqual(["interactive"]);
    expect(fromBatch.map(sentMessage)).toEqual([batch]);
    expect(fromBatch.map((m) => m.lane)).toEqual(["batch"]);
    expect(await queue.receive(route, 10, 0, "interactive")).toEqual([]);
  });

  it("releases, requeues and deletes a message in the lane it came from", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(brief);
    await queue.enqueue(route, [message("lane")], "interactive");
    const [first] = await receiveCount(queue, route, 1, "interactive");

    // Act
    await queue.release(route, first?.receiptHandle ?? "", 0, first?.lane);
    const [released] = await receiveCount(queue, route, 1, "interactive");
    await queue.requeue(route, { body: released?.body ?? "", receiptHandle: released?.receiptHandle ?? "", lane: released?.lane }, 0);
    const [requeued] = await receiveCount(queue, route, 1, "interactive");
    await queue.delete(route, requeued?.receiptHandle ?? "", requeued?.lane);

    // Assess
    expect(released).toMatchObject({ messageId: first?.messageId, lane: "interactive" });
    expect(requeued).toMatchObject({ body: first?.body, lane: "interactive" });
    expect(requeued?.messageId).not.toBe(first?.messageId);
    expect(await queue.receive(route, 10, 0)).toEqual([]);
    expect(await queue.receive(route, 10, OUTLASTS_VISIBILITY_SECONDS, "interactive")).toEqual([]);
  });

  it("carries any text a prompt may hold: accents, emoji, and the characters SQS refuses in a body", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(held);
    const base = message("unicode");
    const unicode: JobMessage = { ...base, request: { ...base.request, prompt: "Ünïcödé 🚀 𝔘 \uFFFE\uFFFF \uD800 tab\t nul\u0000" } };

    // Act
    await queue.enqueue(route, [unicode]);
    const received = await receiveCount(queue, route, 1);

    // Assess
    expect(received.map(sentMessage)).toEqual([unicode]);
  });

  it("gives nothing from an empty queue", async () => {
    const { queue, routes: [route] } = await makeQueue(held);
    expect(await queue.receive(route, 10, 0)).toEqual([]);
  });

  it("never gives a deleted message again, even past its visibility timeout", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(brief);
    await queue.enqueue(route, [message("deleted")]);
    const [received] = await receiveCount(queue, route, 1);

    // Act
    await queue.delete(route, received?.receiptHandle ?? "");

    // Assess: a receive that outlasts the visibility timeout is the only way to see it is gone
    expect(await queue.receive(route, 10, OUTLASTS_VISIBILITY_SECONDS)).toEqual([]);
  });

  it("gives a message released without delay again on a later receive: the same message, with a new receipt", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(held);
    await queue.enqueue(route, [message("released")]);
    const [first] = await receiveCount(queue, route, 1);

    // Act
    await queue.release(route, first?.receiptHandle ?? "", 0);
    const [again] = await receiveCount(queue, route, 1);

    // Assess
    expect(again).toMatchObject({ messageId: first?.messageId, body: first?.body });
    expect(again?.receiptHandle).not.toBe(first?.receiptHandle);
  });

  it("does not give a message released with a delay again at once", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(held);
    await queue.enqueue(route, [message("delayed")]);
    const [first] = await receiveCount(queue, route, 1);

    // Act
    await queue.release(route, first?.receiptHandle ?? "", 30);

    // Assess
    expect(await queue.receive(route, 10, 0)).toEqual([]);
  });

  it("requeues a message as a new one with the same body, and deletes the original for good", async () => {
    // Prepare
    const { queue, routes: [route] } = await makeQueue(brief);
    await queue.enqueue(route, [message("requeued")]);
    const [original] = await receiveCount(queue, route, 1);

    // Act
    await queue.requeue(route, { body: original?.body ?? "", receiptHandle: original?.receiptHandle ?? "" }, 0);
    const [requeued] = await receiveCount(queue, route, 1);
    await queue.delete(route, requeued?.receiptHandle ?? "");

    // Assess
    expect(requeued?.body).toBe(original?.body);
    expect(requeued?.messageId).not.toBe(original?.messageId);
    expect(await queue.receive(route, 10, OUTLASTS_VISIBILITY_SECONDS)).toEqual([]);
  });
}

const nonEmpty = <T>(items: readonly T[]): readonly T[] | undefined => (items.length > 0 ? items : undefined);

import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localSqsClient } from "#local/sqs";
import { type Stack, startStack } from "#local/stack";
import { SqsWebhookOutbox } from "#shared/aws/sqs-webhook-outbox";
import type { WebhookEvent } from "#shared/ports";

// Webhooks on the embedded stack (fauxqs, dynalite, osls offline, the stack's own event source
// mapping): an endpoint registered over HTTP, events put on the stack's webhooks queue with the
// outbox adapter (batches that emit them come from elsewhere), and a real receiver on 127.0.0.1
// verifying every delivery with standardwebhooks. The first retry waits 5 s instead of 30 s (the
// stack's webhookFirstRetrySeconds), so a one-minute outage is outlasted in about 75 s.
const stage = `e2ewh${Math.random().toString(36).slice(2, 8)}`;
const FIRST_RETRY_SECONDS = 5;
const OUTAGE_MS = 60_000;

type Delivery = { path: string; at: number; status: number; headers: Record<string, string>; body: string };

/** Answers each path with its status of the moment (default 204) and keeps every request. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  readonly status = new Map<string, number>();
  readonly #server: Server;
  constructor() {
    this.#server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      request.on("end", () => {
        const path = request.url ?? "/";
        const status = this.status.get(path) ?? 204;
        this.deliveries.push({ path, at: Date.now(), status, headers: request.headers as Record<string, string>, body });
        response.writeHead(status).end();
      });
    });
  }
  async listen() {
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }
  of(path: string, eventId: string) {
    return this.deliveries.filter((d) => d.path === path && d.headers["webhook-id"] === eventId);
  }
  close() {
    this.#server.closeAllConnections();
    this.#server.close();
  }
}

let stack: Stack;
let receiver: Receiver;
let base: string;
let outbox: SqsWebhookOutbox;
let sqs: ReturnType<typeof localSqsClient>;

async function api(method: string, path: string, body?: unknown) {
  const response = await fetch(`${stack.endpoints.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as any };
}

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const event = (n: number, type: WebhookEvent["type"] = "batch.completed"): WebhookEvent => ({
  id: `evt_${stage.replace(/[^0-9a-f]/g, "")}${n.toString(16).padStart(4, "0")}`,
  tenant: "dev",
  type,
  created_at: Math.floor(Date.now() / 1000),
  data: { id: `batch_${n}` },
});

beforeAll(async () => {
  receiver = new Receiver();
  base = await receiver.listen();
  stack = await startStack({ stage, sagemaker: false, webhookFirstRetrySeconds: FIRST_RETRY_SECONDS });
  sqs = localSqsClient(stack.endpoints.sqs);
  outbox = new SqsWebhookOutbox({ client: sqs, queueName: `${stack.prefix}-webhooks` });
}, 180_000);

afterAll(async () => {
  sqs?.destroy();
  await stack?.stop();
  receiver?.close();
});

describe("webhooks on the embedded stack", () => {
  const secrets = new Map<string, string>();

  it("registers endpoints, shows each secret once, lists them without it, and refuses a bad URL naming the field", async () => {
    for (const path of ["/steady", "/flaky"]) {
      const created = await api("POST", "/v1/webhooks", { url: `${base}${path}` });
      expect(created.status).toBe(201);
      expect(created.json).toMatchObject({ object: "webhook_endpoint", url: `${base}${path}`, events: ["batch.completed", "batch.failed", "batch.expired", "batch.cancelled"] });
      secrets.set(path, created.json.secret);
    }
    const failedOnly = await api("POST", "/v1/webhooks", { url: `${base}/failed-only`, events: ["batch.failed"] });
    secrets.set("/failed-only", failedOnly.json.secret);

    const listed = await api("GET", "/v1/webhooks");
    expect(listed.json.data).toHaveLength(3);
    expect(JSON.stringify(listed.json)).not.toContain("whsec_");

    const bad = await api("POST", "/v1/webhooks", { url: "http://example.com/hook" });
    expect(bad).toMatchObject({ status: 400, json: { error: { code: "invalid_request", field: "url" } } });
    const gone = await api("POST", "/v1/webhooks", { url: `${base}/gone` });
    expect((await api("DELETE", `/v1/webhooks/${gone.json.id}`)).status).toBe(200);
    expect((await api("DELETE", `/v1/webhooks/${gone.json.id}`)).status).toBe(404);
  }, 30_000);

  it("delivers an event, signed, to each subscribed endpoint once", async () => {
    const first = event(1);
    const enqueued = Date.now();
    await outbox.enqueue([first]);
    const [steady, flaky] = await waitFor(
      () => {
        const both = [receiver.of("/steady", first.id)[0], receiver.of("/flaky", first.id)[0]];
        return both.every(Boolean) ? (both as [Delivery, Delivery]) : undefined;
      },
      "the first event at both endpoints",
      30_000,
    );
    for (const [path, delivery] of [["/steady", steady], ["/flaky", flaky]] as const) {
      expect(new Webhook(secrets.get(path) ?? "").verify(delivery.body, delivery.headers)).toEqual({ id: first.id, object: "event", created_at: first.created_at, type: "batch.completed", data: { id: "batch_1" } });
    }
    console.log(`webhook e2e: delivered ${Math.max(steady.at, flaky.at) - enqueued} ms after enqueue, the function's first invocation`);
    expect(receiver.of("/failed-only", first.id)).toEqual([]);
    // A pass of the pollers later, nothing was posted twice.
    const warmEnqueued = Date.now();
    await outbox.enqueue([event(2, "batch.failed")]);
    const warm = await waitFor(() => receiver.of("/failed-only", event(2, "batch.failed").id)[0], "the failed event", 30_000);
    console.log(`webhook e2e: delivered ${warm.at - warmEnqueued} ms after enqueue, the function warm`);
    expect(receiver.of("/steady", first.id)).toHaveLength(1);
    expect(receiver.of("/flaky", first.id)).toHaveLength(1);
  }, 60_000);

  it("retries an endpoint that is down for a minute with backoff and delivers once it is back, without posting to the others again", async () => {
    const third = event(3);
    receiver.status.set("/flaky", 503);
    const enqueued = Date.now();
    await outbox.enqueue([third]);
    await waitFor(() => receiver.of("/flaky", third.id)[0], "the first attempt at the endpoint that is down", 30_000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, enqueued + OUTAGE_MS - Date.now())));
    receiver.status.delete("/flaky");
    const failedAttempts = receiver.of("/flaky", third.id).length;

    const delivered = await waitFor(() => receiver.of("/flaky", third.id).find((d) => d.status === 204), "the delivery after the outage", 60_000);
    const attempts = receiver.of("/flaky", third.id);
    console.log(
      `webhook e2e: ${failedAttempts} attempts while down (at ${attempts.map((a) => ((a.at - enqueued) / 1000).toFixed(1)).join(", ")} s), delivered ${((delivered.at - enqueued) / 1000).toFixed(1)} s after enqueue`,
    );

    // Backoff, not a hammering: a handful of attempts in the minute, further and further apart.
    expect(failedAttempts).toBeGreaterThanOrEqual(3);
    expect(failedAttempts).toBeLessThanOrEqual(6);
    const gaps = attempts.slice(1).map((a, i) => a.at - (attempts[i]?.at ?? 0));
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThan((gaps[i - 1] ?? 0) * 1.3);
    // Every attempt is the same event (webhook-id) and verifies; the steady endpoint had it once.
    for (const attempt of attempts) expect(new Webhook(secrets.get("/flaky") ?? "").verify(attempt.body, attempt.headers)).toMatchObject({ id: third.id });
    expect(receiver.of("/steady", third.id)).toHaveLength(1);
    expect(receiver.of("/flaky", third.id).filter((d) => d.status === 204)).toHaveLength(1);
  }, 150_000);
});

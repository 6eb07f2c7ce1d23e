import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { handleWebhookRecord, WebhookRetryScheduled, type WebhookDeliveryDeps } from "#shared/app/webhook-delivery";
import { createWebhookEndpoint, deleteWebhookEndpoint, listWebhookEndpoints } from "#shared/app/webhooks";
import { ConflictError, NotFoundError, RetryableError } from "#shared/core/errors";
import { MAX_DELIVERY_ATTEMPTS, MAX_ENDPOINTS_PER_TENANT, type WebhookEndpoint } from "#shared/core/webhooks";
import { silentLogger } from "../../helpers/fakes.ts";
import { MemoryWebhookEndpoints, RecordingRetryQueue, ScriptedTransport } from "../../helpers/memory-webhooks.ts";

const clock = { now: () => new Date() };

function deliveryDeps() {
  const deps = {
    webhookEndpoints: new MemoryWebhookEndpoints(),
    webhookRetries: new RecordingRetryQueue(),
    webhookTransport: new ScriptedTransport(),
    clock,
    random: () => 0.5,
    logger: silentLogger,
    webhookFirstRetrySeconds: 30,
    allowLoopbackWebhooks: true,
  };
  return deps satisfies WebhookDeliveryDeps;
}

const event = { id: "evt_00ff", tenant: "acme", type: "batch.completed" as const, created_at: 1_800_000_000, data: { id: "batch_1" } };
const eventRecord = (receiveCount = 1) => ({ body: JSON.stringify({ kind: "event", event }), receiveCount, receiptHandle: `rh-event-${receiveCount}` });
const deliveryRecord = (endpointId: string, receiveCount: number) => ({
  body: JSON.stringify({ kind: "delivery", event, endpoint_id: endpointId }),
  receiveCount,
  receiptHandle: `rh-${endpointId}-${receiveCount}`,
});

async function endpoint(deps: ReturnType<typeof deliveryDeps>, url: string, events?: string[], tenant = "acme"): Promise<WebhookEndpoint> {
  const created = await createWebhookEndpoint(deps, tenant, { url, ...(events && { events }) });
  const stored = deps.webhookEndpoints.endpoints.get(created.id);
  if (!stored) throw new Error("not stored");
  return stored;
}

describe("webhook endpoints of a tenant", () => {
  it("are created with a secret shown once, listed without it, and deleted", async () => {
    const deps = deliveryDeps();
    const created = await createWebhookEndpoint(deps, "acme", { url: "https://example.com/h", events: ["batch.failed"] });
    expect(created).toMatchObject({ object: "webhook_endpoint", url: "https://example.com/h", events: ["batch.failed"] });
    expect(created.id).toMatch(/^we_[0-9a-f]{24}$/);
    expect(created.secret).toMatch(/^whsec_/);

    const listed = await listWebhookEndpoints(deps, "acme");
    expect(listed.data).toEqual([{ id: created.id, object: "webhook_endpoint", url: created.url, events: created.events, created_at: created.created_at }]);
    expect((await listWebhookEndpoints(deps, "globex")).data).toEqual([]);

    await expect(deleteWebhookEndpoint(deps, "globex", created.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(await deleteWebhookEndpoint(deps, "acme", created.id)).toEqual({ id: created.id, object: "webhook_endpoint.deleted", deleted: true });
    await expect(deleteWebhookEndpoint(deps, "acme", created.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it(`are at most ${MAX_ENDPOINTS_PER_TENANT} a tenant, the refusal naming the limit`, async () => {
    const deps = deliveryDeps();
    for (let i = 0; i < MAX_ENDPOINTS_PER_TENANT; i++) await createWebhookEndpoint(deps, "acme", { url: `https://example.com/${i}` });
    const refusal = createWebhookEndpoint(deps, "acme", { url: "https://example.com/more" });
    await expect(refusal).rejects.toBeInstanceOf(ConflictError);
    await expect(refusal).rejects.toThrow(`at most ${MAX_ENDPOINTS_PER_TENANT}`);
    await expect(createWebhookEndpoint(deps, "globex", { url: "https://example.com/more" })).resolves.toBeDefined();
  });
});

describe("delivering an event", () => {
  it("posts it, signed, to each endpoint subscribed to its type, and to no other", async () => {
    const deps = deliveryDeps();
    const all = await endpoint(deps, "https://a.example/h");
    await endpoint(deps, "https://b.example/h", ["batch.failed"]);
    await endpoint(deps, "https://c.example/h", undefined, "globex");

    await handleWebhookRecord(deps, eventRecord());

    expect(deps.webhookTransport.posts.map((p) => p.url)).toEqual(["https://a.example/h"]);
    const [post] = deps.webhookTransport.posts;
    expect(new Webhook(all.secret).verify(post?.body ?? "", { ...post?.headers })).toMatchObject({ id: event.id, type: "batch.completed", data: { id: "batch_1" } });
    expect(deps.webhookRetries.deliveries).toEqual([]);
  });

  it("gives each endpoint that failed a delivery of its own, so the others are not posted again", async () => {
    const deps = deliveryDeps();
    await endpoint(deps, "https://ok.example/h");
    const down = await endpoint(deps, "https://down.example/h");
    const silent = await endpoint(deps, "https://silent.example/h");
    deps.webhookTransport.answers.set("https://down.example/h", { status: 503 });
    deps.webhookTransport.answers.set("https://silent.example/h", { error: "no answer in 10000 ms" });

    await handleWebhookRecord(deps, eventRecord());

    expect(deps.webhookRetries.deliveries.map((d) => [d.endpointId, d.delaySeconds]).sort()).toEqual([[down.endpoint_id, 30], [silent.endpoint_id, 30]].sort());
    expect(deps.webhookRetries.hidden).toEqual([]);
  });

  it("retries a failed delivery after the next backoff step, then lets the last attempt go to the DLQ", async () => {
    const deps = deliveryDeps();
    const down = await endpoint(deps, "https://down.example/h");
    deps.webhookTransport.answers.set(down.url, { status: 500 });

    await expect(handleWebhookRecord(deps, deliveryRecord(down.endpoint_id, 1))).rejects.toBeInstanceOf(WebhookRetryScheduled);
    await expect(handleWebhookRecord(deps, deliveryRecord(down.endpoint_id, 2))).rejects.toBeInstanceOf(WebhookRetryScheduled);
    // Receive 1 is attempt 2, whose failure waits the second step (60 s); receive 2, the third (120 s).
    expect(deps.webhookRetries.hidden).toEqual([
      { receiptHandle: `rh-${down.endpoint_id}-1`, seconds: 60 },
      { receiptHandle: `rh-${down.endpoint_id}-2`, seconds: 120 },
    ]);

    await expect(handleWebhookRecord(deps, deliveryRecord(down.endpoint_id, MAX_DELIVERY_ATTEMPTS - 1))).rejects.toThrow(/DLQ/);
    expect(deps.webhookRetries.hidden).toHaveLength(2);

    deps.webhookTransport.answers.set(down.url, { status: 204 });
    await expect(handleWebhookRecord(deps, deliveryRecord(down.endpoint_id, 3))).resolves.toBeUndefined();
  });

  it("drops a delivery whose endpoint was deleted or no longer subscribes, and a message that is not ours", async () => {
    const deps = deliveryDeps();
    await handleWebhookRecord(deps, deliveryRecord("we_gone", 1));
    await handleWebhookRecord(deps, { body: "{not json", receiveCount: 1, receiptHandle: "rh" });
    await handleWebhookRecord(deps, { body: JSON.stringify({ kind: "event" }), receiveCount: 1, receiptHandle: "rh" });
    expect(deps.webhookTransport.posts).toEqual([]);
  });

  it("backs an event's message off when its endpoints cannot be read", async () => {
    const deps = deliveryDeps();
    deps.webhookEndpoints.listByTenant = async () => {
      throw new RetryableError("unavailable", "DynamoDB is down");
    };
    await expect(handleWebhookRecord(deps, eventRecord(3))).rejects.toThrow(/DynamoDB is down/);
    expect(deps.webhookRetries.hidden).toEqual([{ receiptHandle: "rh-event-3", seconds: 120 }]);
  });
});

import { createRequire } from "node:module";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { ValidationError } from "#shared/core/errors";
import {
  eventBody,
  isLoopback,
  MAX_DELIVERY_ATTEMPTS,
  parseEndpointRequest,
  retryDelaySeconds,
  secretFrom,
  signedHeaders,
  WEBHOOK_EVENT_TYPES,
  webhookMessageSchema,
} from "#shared/core/webhooks";

const event = { id: "evt_0123abcd", tenant: "acme", type: "batch.completed" as const, created_at: 1_800_000_000, data: { id: "batch_1" } };
const secret = secretFrom(new Uint8Array(32).fill(7));

function fieldOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof ValidationError) return error.field;
    throw error;
  }
  return "no error";
}

describe("webhook endpoint requests", () => {
  it("take an https URL and default to every event type", () => {
    expect(parseEndpointRequest({ url: "https://example.com/hooks" }, false)).toEqual({ url: "https://example.com/hooks", events: [...WEBHOOK_EVENT_TYPES] });
    expect(parseEndpointRequest({ url: "https://example.com/h", events: ["batch.failed", "batch.failed"] }, false).events).toEqual(["batch.failed"]);
  });

  it("take plain http only to a loopback address, and only where allowed", () => {
    expect(parseEndpointRequest({ url: "http://127.0.0.1:8080/h" }, true).url).toBe("http://127.0.0.1:8080/h");
    expect(parseEndpointRequest({ url: "http://[::1]:8080/h" }, true).url).toBe("http://[::1]:8080/h");
    expect(fieldOf(() => parseEndpointRequest({ url: "http://127.0.0.1:8080/h" }, false))).toBe("url");
    expect(fieldOf(() => parseEndpointRequest({ url: "https://localhost/h" }, false))).toBe("url");
    expect(fieldOf(() => parseEndpointRequest({ url: "http://example.com/h" }, true))).toBe("url");
  });

  it("refuse bad input naming the field", () => {
    expect(fieldOf(() => parseEndpointRequest([], false))).toBe("body");
    expect(fieldOf(() => parseEndpointRequest({}, false))).toBe("url");
    expect(fieldOf(() => parseEndpointRequest({ url: "not a url" }, false))).toBe("url");
    expect(fieldOf(() => parseEndpointRequest({ url: "ftp://example.com" }, false))).toBe("url");
    expect(fieldOf(() => parseEndpointRequest({ url: "https://u:p@example.com" }, false))).toBe("url");
    expect(fieldOf(() => parseEndpointRequest({ url: "https://example.com", events: [] }, false))).toBe("events");
    expect(fieldOf(() => parseEndpointRequest({ url: "https://example.com", events: ["batch.started"] }, false))).toBe("events");
    expect(fieldOf(() => parseEndpointRequest({ url: "https://example.com", events: "batch.failed" }, false))).toBe("events");
  });

  it("know loopback hosts", () => {
    expect(["127.0.0.1", "127.1.2.3", "[::1]", "localhost", "a.localhost"].every(isLoopback)).toBe(true);
    expect(["10.0.0.1", "example.com", "128.0.0.1", "[::2]"].some(isLoopback)).toBe(false);
  });
});

describe("secrets", () => {
  it("are whsec_ and the base64 of 32 bytes", () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(() => secretFrom(new Uint8Array(16))).toThrow(/32 bytes/);
  });
});

describe("a delivery", () => {
  it("posts the event without its tenant", () => {
    expect(JSON.parse(eventBody(event))).toEqual({ id: "evt_0123abcd", object: "event", created_at: 1_800_000_000, type: "batch.completed", data: { id: "batch_1" } });
  });

  it("is signed so that standardwebhooks' verify accepts it, and rejects it tampered or with another secret", () => {
    const body = eventBody(event);
    const headers = signedHeaders(secret, event, body, new Date());
    expect(headers["webhook-id"]).toBe(event.id);
    expect(headers["webhook-signature"]).toMatch(/^v1,/);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body.replace("batch_1", "batch_2"), headers)).toThrow();
    expect(() => new Webhook(secretFrom(new Uint8Array(32).fill(8))).verify(body, headers)).toThrow();
  });

  it("is refused by a receiver when its timestamp is stale (the attempt's time is signed)", () => {
    const body = eventBody(event);
    const headers = signedHeaders(secret, event, body, new Date(Date.now() - 10 * 60_000));
    expect(() => new Webhook(secret).verify(body, headers)).toThrow(/timestamp/i);
  });
});

describe("queue messages", () => {
  it("are an event or one endpoint's delivery of it", () => {
    expect(webhookMessageSchema.safeParse({ kind: "event", event }).success).toBe(true);
    expect(webhookMessageSchema.safeParse({ kind: "delivery", event, endpoint_id: "we_1" }).success).toBe(true);
    expect(webhookMessageSchema.safeParse({ kind: "delivery", event }).success).toBe(false);
    expect(webhookMessageSchema.safeParse({ kind: "event", event: { ...event, type: "batch.started" } }).success).toBe(false);
  });
});

describe("the retry schedule", () => {
  const low = () => 0;
  const high = () => 0.999_999;

  it("doubles from 30 s, with ±10% jitter, up to a minute short of SQS's 12-hour visibility limit (counted from the receipt)", () => {
    expect([1, 2, 3, 4].map((a) => retryDelaySeconds(a, () => 0.5))).toEqual([30, 60, 120, 240]);
    expect(retryDelaySeconds(1, low)).toBe(27);
    expect(retryDelaySeconds(1, high)).toBe(33);
    expect(retryDelaySeconds(12, high)).toBe(43_140);
    expect(retryDelaySeconds(40, () => 0.5)).toBe(43_140);
    expect(retryDelaySeconds(1, () => 0.5, 2)).toBe(2);
  });

  it("spans at least 24 hours of attempts, even at the lowest jitter, and at most about a day and a half", () => {
    const span = (random: () => number) => Array.from({ length: MAX_DELIVERY_ATTEMPTS - 1 }, (_, i) => retryDelaySeconds(i + 1, random)).reduce((a, b) => a + b, 0);
    expect(span(low)).toBeGreaterThanOrEqual(24 * 3600);
    expect(span(high)).toBeLessThan(36 * 3600);
  });

  it("matches the queue's maxReceiveCount: the delivery message is received for every attempt but the first", () => {
    const webhooks = createRequire(import.meta.url)("../../../infra/webhooks.cjs") as { maxDeliveryAttempts: number };
    expect(webhooks.maxDeliveryAttempts).toBe(MAX_DELIVERY_ATTEMPTS);
  });
});

import { isIP } from "node:net";
import { Webhook } from "standardwebhooks";
import { z } from "zod";
import { ValidationError } from "./errors.ts";

/** The event types a tenant can subscribe to (docs/openai-compatible.md, "Webhooks"). */
export const WEBHOOK_EVENT_TYPES = ["batch.completed", "batch.failed", "batch.expired", "batch.cancelled"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Enough for a tenant's receivers (prod, staging, a tool or two); each one multiplies every event's deliveries. */
export const MAX_ENDPOINTS_PER_TENANT = 10;
/** Standard Webhooks asks receivers to answer fast; a slow one is retried like a failing one. */
export const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * A tenant's endpoint as stored. The secret is kept as issued: signing needs the key itself
 * (HMAC), so a hash would not do; the table is encrypted at rest and only the webhook functions
 * may read it.
 */
export type WebhookEndpoint = {
  readonly endpoint_id: string;
  readonly tenant: string;
  readonly url: string;
  readonly events: readonly WebhookEventType[];
  /** Epoch seconds. */
  readonly created_at: number;
  readonly secret: string;
};

/** What GET shows: never the secret, which POST showed once. */
export function toEndpointView(endpoint: WebhookEndpoint) {
  return { id: endpoint.endpoint_id, object: "webhook_endpoint" as const, url: endpoint.url, events: endpoint.events, created_at: endpoint.created_at };
}

/** `whsec_` and 32 random bytes in base64, the form Standard Webhooks libraries take. */
export function secretFrom(bytes: Uint8Array): string {
  if (bytes.length !== 32) throw new Error(`a webhook secret takes 32 bytes, got ${bytes.length}`);
  return `whsec_${Buffer.from(bytes).toString("base64")}`;
}

/**
 * The body of POST /v1/webhooks, checked. `allowLoopback`: plain http to 127.0.0.0/8 or ::1, which
 * only the embedded stack allows (its receivers are local tests). In Lambda a loopback address
 * reaches the runtime API (127.0.0.1:9001), which no tenant should be able to post to.
 */
export function parseEndpointRequest(body: unknown, allowLoopback: boolean): { url: string; events: WebhookEventType[] } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ValidationError("body: must be a JSON object", "body");
  const { url, events } = body as { url?: unknown; events?: unknown };
  return { url: checkUrl(url, allowLoopback), events: checkEvents(events) };
}

function checkUrl(url: unknown, allowLoopback: boolean): string {
  if (typeof url !== "string" || url === "") throw new ValidationError("url: is required (a string)", "url");
  if (url.length > 2048) throw new ValidationError("url: at most 2048 characters", "url");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError(`url: not a URL: ${url.slice(0, 100)}`, "url");
  }
  if (parsed.username !== "" || parsed.password !== "") throw new ValidationError("url: must not carry credentials", "url");
  if (parsed.protocol === "https:") {
    if (!allowLoopback && isLoopback(parsed.hostname)) throw new ValidationError("url: must not be a loopback address", "url");
    return parsed.href;
  }
  if (parsed.protocol === "http:" && allowLoopback && isLoopback(parsed.hostname)) return parsed.href;
  throw new ValidationError(allowLoopback ? "url: must be https:// (or http:// to a loopback address)" : "url: must be https://", "url");
}

/** 127.0.0.0/8, ::1 and localhost: addresses that never leave the machine. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

function checkEvents(events: unknown): WebhookEventType[] {
  if (events === undefined) return [...WEBHOOK_EVENT_TYPES];
  if (!Array.isArray(events) || events.length === 0) throw new ValidationError(`events: must be a non-empty array of ${WEBHOOK_EVENT_TYPES.join(", ")}`, "events");
  const unknown = events.find((e) => !WEBHOOK_EVENT_TYPES.includes(e as WebhookEventType));
  if (unknown !== undefined) throw new ValidationError(`events: unknown event type ${JSON.stringify(unknown)}; one of ${WEBHOOK_EVENT_TYPES.join(", ")}`, "events");
  return [...new Set(events as WebhookEventType[])];
}

export const webhookEventSchema = z.object({
  id: z.string().regex(/^evt_\S+$/, "an event id is evt_ and more"),
  tenant: z.string().min(1),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  created_at: z.number().int(),
  data: z.object({ id: z.string().min(1) }),
});
export type QueuedWebhookEvent = z.output<typeof webhookEventSchema>;

/**
 * A message of the webhooks queue: an event as the outbox put it (to fan out), or one endpoint's
 * delivery of it (after the first attempt there failed).
 */
export const webhookMessageSchema = z.union([
  z.object({ kind: z.literal("event"), event: webhookEventSchema }),
  z.object({ kind: z.literal("delivery"), event: webhookEventSchema, endpoint_id: z.string().min(1) }),
]);
export type WebhookMessage = z.output<typeof webhookMessageSchema>;

/** The JSON a receiver gets: the event without its tenant, which is the receiver itself. */
export function eventBody(event: QueuedWebhookEvent): string {
  return JSON.stringify({ id: event.id, object: "event", created_at: event.created_at, type: event.type, data: { id: event.data.id } });
}

/**
 * Standard Webhooks headers for one delivery. webhook-id is the event's id on every attempt and
 * every endpoint, so a receiver dedupes on it; the timestamp is the attempt's, as the spec has
 * it (receivers refuse stale ones).
 */
export function signedHeaders(secret: string, event: QueuedWebhookEvent, body: string, at: Date): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": event.id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(event.id, at, body),
  };
}

/** The delay before the second attempt; each later one doubles, up to SQS's 12-hour visibility limit. */
export const FIRST_RETRY_SECONDS = 30;
/**
 * SQS refuses a visibility timeout reaching past 12 hours from the message's receipt, and the
 * backoff is set a few seconds after it (the invocation's posts, up to its 29 s timeout): a
 * minute short of 12 hours is never refused.
 */
export const MAX_BACKOFF_SECONDS = 43_200 - 60;
/**
 * Attempts in all (the first inline, the rest as receives of the delivery message): with the
 * schedule below, the last comes at least 24 hours after the first even at the lowest jitter
 * (test/unit/core/webhooks.test.ts). The queue's maxReceiveCount is this minus one
 * (infra/webhooks.cjs): the first attempt is made on the event's message, not the delivery's.
 */
export const MAX_DELIVERY_ATTEMPTS = 13;
/** SendMessage's longest DelaySeconds: the first retry's delay is cut to it. */
export const MAX_SEND_DELAY_SECONDS = 900;

/**
 * Seconds to wait after failed attempt `attempt` (1-based): base · 2^(attempt-1), capped just under 12 h,
 * times a jitter of ±10% so that a receiver coming back is not hit by every retry at once.
 * `random` is in [0, 1).
 */
export function retryDelaySeconds(attempt: number, random: () => number, baseSeconds = FIRST_RETRY_SECONDS): number {
  const raw = Math.min(MAX_BACKOFF_SECONDS, baseSeconds * 2 ** Math.max(0, attempt - 1));
  return Math.min(MAX_BACKOFF_SECONDS, Math.max(1, Math.round(raw * (0.9 + 0.2 * random()))));
}

import { BatchlineError } from "../core/errors.ts";
import {
  DELIVERY_TIMEOUT_MS,
  eventBody,
  MAX_DELIVERY_ATTEMPTS,
  MAX_SEND_DELAY_SECONDS,
  type QueuedWebhookEvent,
  retryDelaySeconds,
  signedHeaders,
  type WebhookEndpoint,
  webhookMessageSchema,
} from "../core/webhooks.ts";
import type { Clock, WebhookEndpointStore, WebhookPostResult, WebhookRetryQueue, WebhookTransport } from "../ports.ts";
import type { Logger } from "./logger.ts";

export type WebhookDeliveryDeps = {
  readonly webhookEndpoints: WebhookEndpointStore;
  readonly webhookRetries: WebhookRetryQueue;
  readonly webhookTransport: WebhookTransport;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  /** The first retry's delay; the embedded stack's tests shorten it (BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS). */
  readonly webhookFirstRetrySeconds: number;
};

/** A received message of the webhooks queue, as its event source mapping hands it over. */
export type WebhookQueueRecord = { readonly body: string; readonly receiveCount: number; readonly receiptHandle: string };

/** The record's attempt failed and its message is hidden until the next: SQS delivers it again then. */
export class WebhookRetryScheduled extends BatchlineError {
  override readonly name = "WebhookRetryScheduled";
  constructor(message: string) {
    super("unavailable", message, { retryable: true });
  }
}

/**
 * One message of the webhooks queue. An event is posted to each of its tenant's endpoints that
 * subscribe to its type at once; each endpoint that failed gets a message of its own (a delivery),
 * so that its retries never post to the endpoints that answered. A delivery that fails again is
 * hidden for the next backoff step (the message's receive count is its attempt), and past
 * MAX_DELIVERY_ATTEMPTS is let go to the DLQ.
 */
export async function handleWebhookRecord(deps: WebhookDeliveryDeps, record: WebhookQueueRecord): Promise<void> {
  const message = parse(record.body);
  if (!message) {
    deps.logger.error("webhooks queue message that is not ours; dropped", { body: record.body.slice(0, 512) });
    return;
  }
  if (message.kind === "event") {
    await retryingOnError(deps, record, record.receiveCount, () => fanOut(deps, message.event));
    return;
  }
  // The first attempt was made on the event's message.
  const attempt = record.receiveCount + 1;
  const endpoint = (await retryingOnError(deps, record, attempt, () => deps.webhookEndpoints.listByTenant(message.event.tenant))).find(
    (e) => e.endpoint_id === message.endpoint_id,
  );
  if (!endpoint || !endpoint.events.includes(message.event.type)) {
    deps.logger.info("webhook endpoint deleted or unsubscribed; delivery dropped", { endpointId: message.endpoint_id, eventId: message.event.id });
    return;
  }
  const result = await post(deps, endpoint, message.event);
  if (delivered(result)) return;
  await scheduleRetry(deps, record, attempt, `${endpoint.url} answered ${describe(result)}`);
}

async function fanOut(deps: WebhookDeliveryDeps, event: QueuedWebhookEvent): Promise<void> {
  const endpoints = (await deps.webhookEndpoints.listByTenant(event.tenant)).filter((e) => e.events.includes(event.type));
  const results = await Promise.all(endpoints.map(async (endpoint) => ({ endpoint, result: await post(deps, endpoint, event) })));
  const failed = results.filter(({ result }) => !delivered(result));
  if (failed.length === 0) return;
  for (const { endpoint, result } of failed) deps.logger.warn("webhook delivery failed; retrying", { eventId: event.id, endpointId: endpoint.endpoint_id, attempt: 1, result: describe(result) });
  // A retry of the event's own message would post to the endpoints that answered again.
  const delay = Math.min(MAX_SEND_DELAY_SECONDS, retryDelaySeconds(1, deps.random, deps.webhookFirstRetrySeconds));
  await deps.webhookRetries.enqueueDeliveries(failed.map(({ endpoint }) => ({ event, endpointId: endpoint.endpoint_id })), delay);
}

async function post(deps: WebhookDeliveryDeps, endpoint: WebhookEndpoint, event: QueuedWebhookEvent): Promise<WebhookPostResult> {
  const body = eventBody(event);
  return deps.webhookTransport.post(endpoint.url, signedHeaders(endpoint.secret, event, body, deps.clock.now()), body, DELIVERY_TIMEOUT_MS);
}

const delivered = (result: WebhookPostResult) => "status" in result && result.status >= 200 && result.status < 300;
const describe = (result: WebhookPostResult) => ("status" in result ? `HTTP ${result.status}` : result.error);

/** Runs `step`; if it throws (DynamoDB or SQS down), the message waits a backoff step before SQS gives it again. */
async function retryingOnError<T>(deps: WebhookDeliveryDeps, record: WebhookQueueRecord, attempt: number, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    return scheduleRetry(deps, record, attempt, error instanceof Error ? error.message : String(error));
  }
}

async function scheduleRetry(deps: WebhookDeliveryDeps, record: WebhookQueueRecord, attempt: number, why: string): Promise<never> {
  if (attempt >= MAX_DELIVERY_ATTEMPTS) {
    // Left as it is, the message comes back after the queue's visibility timeout and SQS moves it to the DLQ.
    throw new WebhookRetryScheduled(`webhook attempt ${attempt} of ${MAX_DELIVERY_ATTEMPTS} failed (${why}); the DLQ takes it`);
  }
  const delay = retryDelaySeconds(attempt, deps.random, deps.webhookFirstRetrySeconds);
  await deps.webhookRetries.retryLater(record.receiptHandle, delay).catch((error: unknown) => {
    // Without it the queue's visibility timeout still brings the message back: sooner, not never.
    deps.logger.warn("could not set the webhook retry's backoff", { error: error instanceof Error ? error.message : String(error) });
  });
  throw new WebhookRetryScheduled(`webhook attempt ${attempt} failed (${why}); next in ${delay} s`);
}

function parse(body: string) {
  try {
    const parsed = webhookMessageSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

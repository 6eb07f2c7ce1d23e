import type { WebhookEndpoint } from "#shared/core/webhooks";
import type { WebhookEndpointStore, WebhookEvent, WebhookPostResult, WebhookRetryQueue, WebhookTransport } from "#shared/ports";

/** Webhook endpoints in memory, as the DynamoDB store behaves (the limit holds per tenant). */
export class MemoryWebhookEndpoints implements WebhookEndpointStore {
  readonly endpoints = new Map<string, WebhookEndpoint>();
  async create(endpoint: WebhookEndpoint, limit: number) {
    // Counted without an await in between, as the store's conditional put is atomic.
    if ([...this.endpoints.values()].filter((e) => e.tenant === endpoint.tenant).length >= limit) return false;
    this.endpoints.set(endpoint.endpoint_id, endpoint);
    return true;
  }
  async listByTenant(tenant: string) {
    return [...this.endpoints.values()].filter((e) => e.tenant === tenant);
  }
  async delete(tenant: string, endpointId: string) {
    if (this.endpoints.get(endpointId)?.tenant !== tenant) return false;
    return this.endpoints.delete(endpointId);
  }
}

/** What the delivery function asked of the webhooks queue. */
export class RecordingRetryQueue implements WebhookRetryQueue {
  readonly deliveries: { event: WebhookEvent; endpointId: string; delaySeconds: number }[] = [];
  readonly hidden: { receiptHandle: string; seconds: number }[] = [];
  async enqueueDeliveries(deliveries: readonly { readonly event: WebhookEvent; readonly endpointId: string }[], delaySeconds: number) {
    this.deliveries.push(...deliveries.map((d) => ({ ...d, delaySeconds })));
  }
  async retryLater(receiptHandle: string, seconds: number) {
    this.hidden.push({ receiptHandle, seconds });
  }
}

/** Answers each POST by URL (default 200) and keeps what was posted. */
export class ScriptedTransport implements WebhookTransport {
  readonly posts: { url: string; headers: Readonly<Record<string, string>>; body: string }[] = [];
  readonly answers = new Map<string, WebhookPostResult>();
  async post(url: string, headers: Readonly<Record<string, string>>, body: string) {
    this.posts.push({ url, headers, body });
    return this.answers.get(url) ?? { status: 200 };
  }
}

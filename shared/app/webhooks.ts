import { randomBytes } from "node:crypto";
import { ConflictError, NotFoundError } from "../core/errors.ts";
import { MAX_ENDPOINTS_PER_TENANT, parseEndpointRequest, secretFrom, toEndpointView, type WebhookEndpoint } from "../core/webhooks.ts";
import type { Clock, WebhookEndpointStore } from "../ports.ts";

export type WebhookEndpointDeps = {
  readonly webhookEndpoints: WebhookEndpointStore;
  readonly clock: Clock;
  /** Plain http to a loopback address is allowed (the embedded stack only). */
  readonly allowLoopbackWebhooks: boolean;
};

/** POST /v1/webhooks: the endpoint, with its secret this once. */
export async function createWebhookEndpoint(deps: WebhookEndpointDeps, tenant: string, body: unknown) {
  const { url, events } = parseEndpointRequest(body, deps.allowLoopbackWebhooks);
  const endpoint: WebhookEndpoint = {
    endpoint_id: `we_${randomBytes(12).toString("hex")}`,
    tenant,
    url,
    events,
    created_at: Math.floor(deps.clock.now().getTime() / 1000),
    secret: secretFrom(randomBytes(32)),
  };
  if (!(await deps.webhookEndpoints.create(endpoint, MAX_ENDPOINTS_PER_TENANT))) {
    // 409, not 429: waiting does not help, deleting an endpoint does.
    throw new ConflictError(`a tenant may have at most ${MAX_ENDPOINTS_PER_TENANT} webhook endpoints; delete one first`);
  }
  return { ...toEndpointView(endpoint), secret: endpoint.secret };
}

export async function listWebhookEndpoints(deps: Pick<WebhookEndpointDeps, "webhookEndpoints">, tenant: string) {
  const endpoints = await deps.webhookEndpoints.listByTenant(tenant);
  return { object: "list" as const, data: [...endpoints].sort((a, b) => a.created_at - b.created_at || a.endpoint_id.localeCompare(b.endpoint_id)).map(toEndpointView) };
}

export async function deleteWebhookEndpoint(deps: Pick<WebhookEndpointDeps, "webhookEndpoints">, tenant: string, endpointId: string) {
  if (!(await deps.webhookEndpoints.delete(tenant, endpointId))) throw new NotFoundError(`no webhook endpoint ${endpointId}`);
  return { id: endpointId, object: "webhook_endpoint.deleted" as const, deleted: true };
}

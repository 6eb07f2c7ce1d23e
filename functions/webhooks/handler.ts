import { createWebhookEndpoint, deleteWebhookEndpoint, listWebhookEndpoints } from "#shared/app/webhooks";
import { httpFunction, json, jsonBody, pathParameter } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  "POST /v1/webhooks": async ({ tenant, event }) => json(201, await createWebhookEndpoint(deps, tenant, jsonBody(event))),
  "GET /v1/webhooks": async ({ tenant }) => json(200, await listWebhookEndpoints(deps, tenant)),
  "DELETE /v1/webhooks/{id}": async ({ tenant, event }) => json(200, await deleteWebhookEndpoint(deps, tenant, pathParameter(event, "id"))),
});

import { issueTicket } from "#shared/app/tenants";
import { httpFunction, json } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  "POST /v1/ws-tickets": async ({ principal }) => json(201, await issueTicket(deps, principal)),
});

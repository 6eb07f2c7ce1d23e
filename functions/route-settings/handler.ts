import { getRouteSettings, updateRouteSettings } from "#shared/app/route-settings";
import { httpFunction, json, jsonBody, pathParameter } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  "GET /v1/routes/{model}/settings": async ({ event }) => json(200, await getRouteSettings(deps, pathParameter(event, "model"))),
  "PUT /v1/routes/{model}/settings": async ({ principal, event }) =>
    json(200, await updateRouteSettings(deps, principal, pathParameter(event, "model"), jsonBody(event))),
});

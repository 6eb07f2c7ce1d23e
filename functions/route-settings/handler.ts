import { getRouteSettings, updateRouteSettings } from "#shared/app/route-settings";
import { exportRouteTrace, predictRouteSettings } from "#shared/app/route-tuning";
import { httpFunction, json, jsonBody, pathParameter } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  "GET /v1/routes/{model}/settings": async ({ event }) => json(200, await getRouteSettings(deps, pathParameter(event, "model"))),
  "PUT /v1/routes/{model}/settings": async ({ principal, event }) =>
    json(200, await updateRouteSettings(deps, principal, pathParameter(event, "model"), jsonBody(event))),
  "POST /v1/routes/{model}/settings/predict": async ({ principal, event }) =>
    json(200, await predictRouteSettings(deps, principal, pathParameter(event, "model"), jsonBody(event))),
  "GET /v1/routes/{model}/trace": async ({ principal, event }) =>
    json(200, await exportRouteTrace(deps, principal, pathParameter(event, "model"), event.queryStringParameters)),
});

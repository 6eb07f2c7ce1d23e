import { describeModels } from "#shared/app/models";
import { httpFunction, json } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  "GET /v1/models": async () => json(200, { data: describeModels(deps.catalog) }),
});

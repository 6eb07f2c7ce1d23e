import { cancelJob } from "#shared/app/cancel";
import { getJob } from "#shared/app/queries";
import { submitJob } from "#shared/app/submit";
import { viewOf } from "#shared/app/waiting";
import { toJobView } from "#shared/core/jobs";
import { httpFunction, json, jsonBody, pathParameter } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  "POST /v1/jobs": async ({ tenant, event }) => {
    const { job, created, queue } = await submitJob(deps, tenant, jsonBody(event));
    return json(created ? 202 : 200, { job_id: job.job_id, status: job.status, ...(queue && { queue }) });
  },
  "GET /v1/jobs/{id}": async ({ tenant, event }) => json(200, await viewOf(deps, await getJob(deps, tenant, pathParameter(event, "id")))),
  "DELETE /v1/jobs/{id}": async ({ tenant, event }) => json(200, toJobView(await cancelJob(deps, tenant, pathParameter(event, "id")))),
});

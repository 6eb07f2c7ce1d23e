import { cancelBatch } from "#shared/app/cancel";
import { batchResults, describeBatch, listBatches } from "#shared/app/queries";
import { submitBatch } from "#shared/app/submit";
import { pageRequest } from "#shared/core/paging";
import { bodyText, httpFunction, json, pathParameter } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  "POST /v1/batches": async ({ tenant, event }) => {
    const { batch, request_counts } = await submitBatch(deps, tenant, bodyText(event));
    return json(202, { batch_id: batch.batch_id, status: "in_progress", request_counts });
  },
  "GET /v1/batches": async ({ tenant, event }) => {
    const page = await listBatches(deps, tenant, pageRequest(event.queryStringParameters, 20));
    return json(200, { data: page.items, next_cursor: page.cursor ?? null });
  },
  "GET /v1/batches/{id}": async ({ tenant, event }) => json(200, await describeBatch(deps, tenant, pathParameter(event, "id"))),
  "POST /v1/batches/{id}/cancel": async ({ tenant, event }) => json(200, await cancelBatch(deps, tenant, pathParameter(event, "id"))),
  "GET /v1/batches/{id}/results": async ({ tenant, event }) => {
    const page = await batchResults(deps, tenant, pathParameter(event, "id"), pageRequest(event.queryStringParameters, 1000));
    return {
      statusCode: 200,
      headers: { "content-type": "application/x-ndjson", ...(page.cursor ? { "x-next-cursor": page.cursor } : {}) },
      body: page.items.map((line) => JSON.stringify(line)).join("\n") + (page.items.length > 0 ? "\n" : ""),
    };
  },
});

import { cancelBatch } from "#shared/app/cancel";
import { createOpenAIBatch, describeOpenAIBatch, listOpenAIBatches } from "#shared/app/openai-batch-create";
import { batchResults } from "#shared/app/queries";
import { submitBatch } from "#shared/app/submit";
import { isOpenAICreate } from "#shared/core/openai-batches";
import { pageRequest } from "#shared/core/paging";
import { bodyText, httpFunction, json, pathParameter } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  // A JSON object naming an input file is an OpenAI batch; any other body is a JSON-lines file.
  "POST /v1/batches": async ({ tenant, event }) => {
    const text = bodyText(event);
    if (isOpenAICreate(event.headers["content-type"], text)) return json(200, await createOpenAIBatch(deps, tenant, JSON.parse(text)));
    const { batch, request_counts } = await submitBatch(deps, tenant, text);
    return json(202, { batch_id: batch.batch_id, status: "in_progress", request_counts });
  },
  "GET /v1/batches": async ({ tenant, event }) => json(200, await listOpenAIBatches(deps, tenant, event.queryStringParameters)),
  "GET /v1/batches/{id}": async ({ tenant, event }) => json(200, await describeOpenAIBatch(deps, tenant, pathParameter(event, "id"))),
  "POST /v1/batches/{id}/cancel": async ({ tenant, event }) => {
    const id = pathParameter(event, "id");
    await cancelBatch(deps, tenant, id);
    return json(200, await describeOpenAIBatch(deps, tenant, id));
  },
  "GET /v1/batches/{id}/results": async ({ tenant, event }) => {
    const page = await batchResults(deps, tenant, pathParameter(event, "id"), pageRequest(event.queryStringParameters, 1000));
    return {
      statusCode: 200,
      headers: { "content-type": "application/x-ndjson", ...(page.cursor ? { "x-next-cursor": page.cursor } : {}) },
      body: page.items.map((line) => JSON.stringify(line)).join("\n") + (page.items.length > 0 ? "\n" : ""),
    };
  },
});

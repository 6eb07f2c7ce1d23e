import { completeUpload, createUpload, deleteFile, fileContent, getFile, listFiles, toUploadObject, uploadFile } from "#shared/app/files";
import { fileList, fileListQuery, toFileObject } from "#shared/core/files";
import { httpFunction, type HttpResponse, json, jsonBody, pathParameter } from "#shared/http";
import { formBody } from "#shared/http-form";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = httpFunction(() => deps.apiKeys, {
  "POST /v1/files": async ({ tenant, event }) => {
    const form = await formBody(event);
    return json(200, toFileObject(await uploadFile(deps, tenant, { file: form.get("file"), purpose: form.get("purpose") })));
  },
  "GET /v1/files": async ({ tenant, event }) => {
    const { items, hasMore } = await listFiles(deps, tenant, fileListQuery(event.queryStringParameters));
    return json(200, fileList(items, hasMore));
  },
  "GET /v1/files/{id}": async ({ tenant, event }) => json(200, toFileObject(await getFile(deps, tenant, pathParameter(event, "id")))),
  "GET /v1/files/{id}/content": async ({ tenant, event }): Promise<HttpResponse> => {
    const content = await fileContent(deps, tenant, pathParameter(event, "id"));
    if ("redirect" in content) return { statusCode: 302, headers: { location: content.redirect }, body: "" };
    return { statusCode: 200, headers: { "content-type": "application/jsonl" }, body: content.text };
  },
  "DELETE /v1/files/{id}": async ({ tenant, event }) => {
    const id = pathParameter(event, "id");
    await deleteFile(deps, tenant, id);
    return json(200, { id, object: "file", deleted: true });
  },
  "POST /v1/uploads": async ({ tenant, event }) => {
    const { upload, uploadUrl } = await createUpload(deps, tenant, jsonBody(event));
    return json(200, { ...toUploadObject(upload), upload_url: uploadUrl });
  },
  "POST /v1/uploads/{id}/complete": async ({ tenant, event }) => {
    const { upload, file } = await completeUpload(deps, tenant, pathParameter(event, "id"));
    return json(200, toUploadObject(upload, file));
  },
});

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey, hashApiKey } from "#shared/core/api-keys";
import { localClientConfig } from "../helpers/local-aws.ts";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";

// Files on the embedded stack, started as `npm start` starts it, through the official `openai`
// client: upload, read, list, delete; an upload past Lambda's limit by /v1/uploads and its
// presigned S3 PUT; and bodies too big refused as API Gateway and Lambda refuse them.
const stage = `e2ef${Math.random().toString(36).slice(2, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-e2e-files-"));
const apiKey = generateApiKey();
const otherKey = generateApiKey();
let stack: StackProcess;
let client: OpenAI;

/** JSON lines of the batch input shape, `bytes` long or a little over. */
function jsonl(bytes: number, tag: string): string {
  const line = (i: number) => `${JSON.stringify({ custom_id: `${tag}-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "llama-2-7b", messages: [{ role: "user", content: "x".repeat(200) }] } })}\n`;
  const lines: string[] = [];
  for (let size = 0, i = 0; size < bytes; i++) {
    lines.push(line(i));
    size += lines.at(-1)!.length;
  }
  return lines.join("");
}

beforeAll(async () => {
  stack = await startStackProcess({ stage, dataDir, apiKey }, await stackPorts());
  client = new OpenAI({ baseURL: `${stack.http}/v1`, apiKey, maxRetries: 0 });
  // A second tenant's key, written as the stack writes the dev key.
  const ddb = new DynamoDBClient(localClientConfig(stack.dynamodb));
  await ddb.send(new PutItemCommand({
    TableName: `batchline-${stage}-api-keys`,
    Item: { key_hash: { S: hashApiKey(otherKey) }, tenant: { S: `other-${stage}` }, name: { S: "e2e other tenant" }, created_at: { S: new Date().toISOString() } },
  }));
  ddb.destroy();
}, 180_000);

afterAll(async () => {
  await stack?.interrupt();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("files on the embedded stack", () => {
  it("upload, read back, list, and delete through the official client; another tenant sees none of it", async () => {
    const content = jsonl(2_000, "small");
    const created = await client.files.create({ file: new File([content], "small.jsonl"), purpose: "batch" });
    expect(created).toMatchObject({ object: "file", bytes: Buffer.byteLength(content), filename: "small.jsonl", purpose: "batch", status: "processed" });
    expect(created.id).toMatch(/^file-[0-9a-f]{32}$/);

    expect(await client.files.retrieve(created.id)).toEqual(created);
    const body = await client.files.content(created.id);
    // serverless-offline (hapi) appends "; charset=utf-8" to what the function answers.
    expect(body.headers.get("content-type")).toMatch(/^application\/jsonl\b/);
    expect(await body.text()).toBe(content);
    const listed = await client.files.list({ purpose: "batch" });
    expect(listed.data.map((f) => f.id)).toContain(created.id);

    const other = new OpenAI({ baseURL: `${stack.http}/v1`, apiKey: otherKey, maxRetries: 0 });
    await expect(other.files.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.files.content(created.id)).rejects.toMatchObject({ status: 404 });
    expect((await other.files.list()).data).toEqual([]);

    expect(await client.files.delete(created.id)).toEqual({ id: created.id, object: "file", deleted: true });
    await expect(client.files.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
  });

  it("refuses a purpose other than batch with a 400 naming the field", async () => {
    const refused = await client.files.create({ file: new File(["{}\n"], "x.jsonl"), purpose: "fine-tune" }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 400, error: { code: "invalid_request", field: "purpose" } });
  });

  it("takes a file past Lambda's limit by /v1/uploads and its presigned PUT, and serves it back from S3", async () => {
    const content = jsonl(8 * 1024 * 1024, "big");
    const bytes = Buffer.byteLength(content);
    const started = performance.now();
    const opened = await fetch(`${stack.http}/v1/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ filename: "big.jsonl", purpose: "batch", bytes, mime_type: "application/jsonl" }),
    });
    const upload = (await opened.json()) as { id: string; status: string; upload_url: string; expires_at: number; created_at: number };
    expect(opened.status).toBe(200);
    expect(upload).toMatchObject({ object: "upload", status: "pending", bytes, filename: "big.jsonl", purpose: "batch" });
    expect(upload.expires_at - upload.created_at).toBe(3600);

    const put = await fetch(upload.upload_url, { method: "PUT", body: content });
    expect(put.status).toBe(200);
    const completed = await fetch(`${stack.http}/v1/uploads/${upload.id}/complete`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: "{}" });
    const done = (await completed.json()) as { status: string; file: { id: string; bytes: number } };
    const uploadSeconds = (performance.now() - started) / 1000;
    expect(completed.status).toBe(200);
    expect(done).toMatchObject({ id: upload.id, status: "completed", file: { object: "file", bytes, purpose: "batch", filename: "big.jsonl" } });

    const readStarted = performance.now();
    const back = await (await client.files.content(done.file.id)).text();
    const readSeconds = (performance.now() - readStarted) / 1000;
    expect(back.length).toBe(content.length);
    expect(back === content).toBe(true);
    console.log(`files e2e: ${(bytes / 1e6).toFixed(1)} MB uploaded (open, PUT, complete) in ${uploadSeconds.toFixed(2)} s, read back in ${readSeconds.toFixed(2)} s`);
  }, 60_000);

  it("refuses what Lambda cannot take (an event over 6 MiB) and what API Gateway cannot (a body over 10 MiB), in their words", async () => {
    const tooLong = await client.files.create({ file: new File([jsonl(5 * 1024 * 1024, "long")], "long.jsonl"), purpose: "batch" }).catch((e: unknown) => e);
    expect(tooLong).toMatchObject({ status: 413, error: { message: "Request Too Long" } });

    const tooBig = await fetch(`${stack.http}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "multipart/form-data; boundary=x" },
      body: Buffer.alloc(10 * 1024 * 1024 + 1, 0x61),
    });
    expect(tooBig.status).toBe(413);
    expect(await tooBig.text()).toBe("HTTP content length exceeded 10485760 bytes.");
  }, 60_000);
});

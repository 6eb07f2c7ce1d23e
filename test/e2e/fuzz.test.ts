import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from "@aws-sdk/client-sqs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { generateApiKey, hashApiKey } from "#shared/core/api-keys";
import { checkJob } from "#shared/core/submission";
import { checkRouteSettings, defaultRouteSettings } from "#shared/core/route-settings";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";
import {
  fuzzParams, jobWithInvalid, jobWithUnknownKey, junkJson, mangledJsonText, nastyString, numberToken, ownObject, prototypeKeys, validJob, type RouteLimits,
} from "../helpers/fuzz.ts";
import { EventClient, type Event } from "../helpers/ws-client.ts";

// Malformed requests at the real APIs, on the embedded stack started as `npm start` starts it.
// Every answer must be a 4xx with the documented error body, and nothing may be left behind:
// the jobs, batches and idempotency-keys tables hold as many items as before and no job is
// queued. A few hundred requests and frames in all, sent one at a time, with fixed seeds.
const stage = `fuzz${randomBytes(3).toString("hex")}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-fuzz-"));
const apiKey = generateApiKey(); // the development key: tenant dev, admin
const otherKey = generateApiKey(); // tenant globex, member
const catalog = loadRouteCatalog("infra/routes.yml");
const routes: RouteLimits[] = [...catalog.routes.values()].map((r) => ({ name: r.name, maxNewTokens: r.limits.max_new_tokens }));
const table = (name: string) => `batchline-${stage}-${name}`;
const FUZZ_TIMEOUT_MS = 240_000;

let ports: Record<string, string>;
let stack: StackProcess;
let ddb: DynamoDBClient;
let sqs: SQSClient;
/** Ids that exist: dev's finished job and batch, globex's job and batch. */
const seeds = { job: "", batch: "", foreignJob: "", foreignBatch: "" };
let baseline: Record<string, number>;
let requests = 0;
let frames = 0;
const timings: string[] = [];

type Request = { readonly method: string; readonly path: string; readonly headers: Readonly<Record<string, string>>; readonly body?: string | Buffer | undefined };
type Answer = { readonly status: number; readonly contentType: string; readonly text: string };

async function send(request: Request): Promise<Answer> {
  requests += 1;
  const response = await fetch(`${stack.http}${request.path}`, { method: request.method, headers: request.headers, body: request.body });
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", text: await response.text() };
}

const show = (r: Request) => `${r.method} ${r.path.slice(0, 200)} ${JSON.stringify(r.headers).slice(0, 200)} ${String(r.body ?? "").slice(0, 200)}`;

/** The API's promise for a refused request: a 4xx and `{"error": {"code", "message", "field"?}}`, nothing else. */
function expectDocumentedError(request: Request, answer: Answer, statuses?: readonly number[]): void {
  const where = `${show(request)} -> ${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, where).toBeGreaterThanOrEqual(400);
  expect(answer.status, where).toBeLessThan(500);
  if (statuses) expect(statuses, where).toContain(answer.status);
  expect(answer.contentType, where).toMatch(/^application\/json/);
  const body = JSON.parse(answer.text) as { error?: Record<string, unknown> };
  expect(Object.keys(body), where).toEqual(["error"]);
  expect(typeof body.error?.code, where).toBe("string");
  expect(typeof body.error?.message === "string" && body.error.message.trim() !== "", where).toBe(true);
  for (const key of Object.keys(body.error ?? {})) expect(["code", "message", "field"], where).toContain(key);
}

async function itemCount(name: string): Promise<number> {
  let count = 0;
  let start: Record<string, never> | undefined;
  do {
    const out = await ddb.send(new ScanCommand({ TableName: table(name), Select: "COUNT", ExclusiveStartKey: start }));
    count += out.Count ?? 0;
    start = out.LastEvaluatedKey as Record<string, never> | undefined;
  } while (start !== undefined);
  return count;
}

/** Items in the tables a submission writes, and messages waiting or in flight in every route's queue. */
async function traces(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const name of ["jobs", "batches", "idempotency-keys"]) counts[name] = await itemCount(name);
  for (const route of catalog.routes.keys()) {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: `batchline-${stage}-${route}` }));
    const { Attributes = {} } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"] }));
    counts[`queue ${route}`] = Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible) + Number(Attributes.ApproximateNumberOfMessagesDelayed);
  }
  return counts;
}

async function untilFinished(path: string, key: string, deadlineMs = 90_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const answer = await send({ method: "GET", path, headers: { authorization: `Bearer ${key}` } });
    const body = JSON.parse(answer.text) as { status?: string };
    if (body.status === "SUCCEEDED" || body.status === "completed") return;
    if (Date.now() > until) throw new Error(`${path} not finished after ${deadlineMs} ms: ${answer.text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  const started = performance.now();
  ports = await stackPorts();
  stack = await startStackProcess({ stage, dataDir, apiKey }, ports);
  timings.push(`stack ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const local = { region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } };
  ddb = new DynamoDBClient({ endpoint: stack.dynamodb, ...local });
  sqs = new SQSClient({ endpoint: `http://127.0.0.1:${ports.BATCHLINE_SQS_PORT}`, ...local });
  await ddb.send(new PutItemCommand({
    TableName: table("api-keys"),
    Item: { key_hash: { S: hashApiKey(otherKey) }, tenant: { S: "globex" }, name: { S: "fuzz" }, created_at: { S: new Date().toISOString() } },
  }));
  const submit = async (key: string, path: string, body: string) => {
    const answer = await send({ method: "POST", path, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body });
    expect(answer.status, answer.text).toBe(202);
    return JSON.parse(answer.text) as { job_id?: string; batch_id?: string };
  };
  const job = JSON.stringify({ model: "llama-2-7b", prompt: "seed", max_tokens: 2 });
  const line = JSON.stringify({ custom_id: "seed", body: { model: "llama-2-7b", prompt: "seed", max_tokens: 2 } });
  seeds.job = (await submit(apiKey, "/v1/jobs", job)).job_id ?? "";
  seeds.batch = (await submit(apiKey, "/v1/batches", line)).batch_id ?? "";
  seeds.foreignJob = (await submit(otherKey, "/v1/jobs", job)).job_id ?? "";
  seeds.foreignBatch = (await submit(otherKey, "/v1/batches", line)).batch_id ?? "";
  await untilFinished(`/v1/jobs/${seeds.job}`, apiKey);
  await untilFinished(`/v1/batches/${seeds.batch}`, apiKey);
  await untilFinished(`/v1/jobs/${seeds.foreignJob}`, otherKey);
  await untilFinished(`/v1/batches/${seeds.foreignBatch}`, otherKey);
  // The seeds' messages are deleted once their jobs are done: start from empty queues.
  const until = Date.now() + 60_000;
  for (baseline = await traces(); Object.entries(baseline).some(([k, n]) => k.startsWith("queue") && n > 0); baseline = await traces()) {
    if (Date.now() > until) throw new Error(`queues not empty after the seeds finished: ${JSON.stringify(baseline)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  timings.push(`seeds done at ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

afterAll(async () => {
  await stack?.interrupt();
  ddb?.destroy();
  sqs?.destroy();
  rmSync(dataDir, { recursive: true, force: true });
  console.log(`fuzz e2e: ${timings.join(", ")}; ${requests} HTTP requests and ${frames} WebSocket frames`);
});

// --- What the generated requests are made of ---------------------------------------------------

const auth = () => ({ authorization: `Bearer ${apiKey}` });
const contentTypes = fc.constantFrom<Record<string, string>>(
  { "content-type": "application/json" },
  {},
  { "content-type": "text/plain" },
  { "content-type": "application/x-www-form-urlencoded" },
  { "content-type": "multipart/form-data; boundary=x" },
  { "content-type": "application/json; charset=utf-16" },
  { "content-type": "application/json", "content-encoding": "gzip" },
);

/** An id that names nothing of dev's: another tenant's, well-formed but unknown, or junk of any length. */
const strangerId = () =>
  fc.oneof(
    fc.constantFrom(seeds.foreignJob, seeds.foreignBatch, `job_${"0".repeat(32)}`, `batch_${"f".repeat(32)}`, seeds.job.toUpperCase(), `${seeds.job} `, `${seeds.batch}x`),
    nastyString,
    fc.integer({ min: 257, max: 3000 }).map((n) => "j".repeat(n)),
    fc.integer({ min: 700, max: 1500 }).map((n) => "é".repeat(n)),
  ).filter((id) => id.trim() !== "" && id !== "." && id !== ".." && !/^\.+$/.test(id));
// The URL parser resolves "." and ".." segments, and an empty id is another route: those never reach a function.
const inPath = (id: string) => encodeURIComponent(id.toWellFormed());

/** True when the stack would accept this text as a job: such bodies are not malformed and are skipped. */
function wouldAcceptJob(text: string): boolean {
  try {
    checkJob(JSON.parse(text), catalog, new Date());
    return true;
  } catch {
    return false;
  }
}

const badJobBody = () =>
  fc
    .oneof(
      jobWithInvalid(routes, new Date(), { min: 1, max: 3 }).map((j) => JSON.stringify(j.job)),
      jobWithUnknownKey(routes, new Date()).map((j) => JSON.stringify(j.job)),
      junkJson.map((v) => JSON.stringify(v) ?? ""),
      validJob(routes, new Date()).chain((j) => mangledJsonText(JSON.stringify(j))),
      nastyString,
      numberToken.map((n) => `{"model":"llama-2-7b","prompt":"x","max_tokens":${n}}`),
      numberToken.map((n) => `{"model":"llama-2-7b","prompt":"x","max_tokens":4,"temperature":${n},"temperature":0.5,"seed":${n}}`),
      fc.constantFrom('{"model":"llama-2-7b","prompt":"x","max_tokens":4,"metadata":{"__proto__":{"role":"admin"}}}', '{"__proto__":{"model":"llama-2-7b"}}'),
    )
    .filter((text) => !wouldAcceptJob(text));

// --- HTTP ---------------------------------------------------------------------------------------

describe("malformed requests at the HTTP API", () => {
  it("POST /v1/jobs: malformed JSON, wrong fields, odd content types: a 400 or 413 that writes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(badJobBody(), contentTypes, async (body, headers) => {
        const request = { method: "POST", path: "/v1/jobs", headers: { ...auth(), ...headers }, body };
        expectDocumentedError(request, await send(request), [400, 413]);
      }),
      fuzzParams(60, 1),
    );
    expect(await traces()).toEqual(baseline);
  }, FUZZ_TIMEOUT_MS);

  it("POST /v1/batches: files with a bad line, empty, junk: a 400 or 413 that stores no line of them", async () => {
    const validLine = validJob(routes, new Date()).map((job) => ({ job }));
    const file = fc
      .tuple(fc.array(validLine, { maxLength: 4 }), badJobBody(), fc.nat(), fc.constantFrom("\n", "\r\n"))
      .map(([good, bad, at, eol]) => {
        const lines = good.map((g, i) => JSON.stringify({ custom_id: `ok-${i}`, body: g.job }));
        lines.splice(at % (lines.length + 1), 0, JSON.stringify({ custom_id: "bad", body: "__BAD__" }).replace('"__BAD__"', bad.replaceAll("\n", " ") || "{}"));
        return lines.join(eol);
      });
    const bodies = fc.oneof(
      file,
      fc.constantFrom("", "\n", "\r\n", "\ufeff", " \n \n"),
      nastyString.filter((s) => s.trim() !== ""),
      junkJson.map((v) => JSON.stringify(v) ?? "x"),
      validLine.map(({ job }) => `${JSON.stringify({ custom_id: "a", body: job })}\n${JSON.stringify({ custom_id: "a", body: job })}`),
      validLine.map(({ job }) => JSON.stringify({ custom_id: "a", body: job, method: "GET" })),
    );
    await fc.assert(
      fc.asyncProperty(bodies, contentTypes, async (body, headers) => {
        const request = { method: "POST", path: "/v1/batches", headers: { ...auth(), ...headers }, body };
        expectDocumentedError(request, await send(request), [400, 413]);
      }),
      fuzzParams(40, 2),
    );
    expect(await traces()).toEqual(baseline);
  }, FUZZ_TIMEOUT_MS);

  it("GET and DELETE /v1/jobs/{id}: another tenant's, unknown or junk ids are 404, a finished job's cancel is 409", async () => {
    const requests = fc.oneof(
      fc.tuple(fc.constantFrom("GET", "DELETE"), strangerId()).map(([method, id]) => ({ request: { method, path: `/v1/jobs/${inPath(id)}`, headers: auth() }, statuses: [404] })),
      fc.constant({ request: { method: "DELETE", path: `/v1/jobs/${seeds.job}`, headers: auth() }, statuses: [409] }),
    );
    await fc.assert(
      fc.asyncProperty(requests, async ({ request, statuses }) => {
        expectDocumentedError(request, await send(request), statuses);
      }),
      fuzzParams(50, 3),
    );
    expect(await traces()).toEqual(baseline);
  }, FUZZ_TIMEOUT_MS);

  it("GET /v1/batches[/{id}/results]: odd ids, limits and cursors are 404 or 400", async () => {
    const goodLimit = fc.integer({ min: 1, max: 1000 }).map(String);
    const badLimit = fc.oneof(
      fc.constantFrom("0", "1001", "-1", "abc", "1.5", "", " ", "1e4", "NaN", "Infinity", "１", "2,3", "10&limit=20"),
      nastyString,
      fc.integer({ min: 1001 }).map(String),
    ).filter((l) => {
      const n = Number(l);
      return !(Number.isInteger(n) && n >= 1 && n <= 1000);
    });
    const edgeNumber = fc.constantFrom("1e21", "1e309", "-1e309", "9007199254740993", "-9007199254740993", "1e300", "-0");
    const badCursor = fc.oneof(
      fc.tuple(fc.constantFrom("batch_id", "batch_line", "tenant", "created_at"), edgeNumber).map(([k, n]) => Buffer.from(`{"${k}":${n}}`).toString("base64url")),
      nastyString.filter((c) => c !== ""),
      junkJson.map((v) => Buffer.from(JSON.stringify(v) ?? "x").toString("base64url")),
      fc.tuple(fc.constantFrom("batch_id", "batch_line", "job_id", "tenant", "created_at", "__proto__"), numberToken).map(([k, n]) => Buffer.from(`{"${k}":${n}}`).toString("base64url")),
      fc.constantFrom("e30", "bnVsbA", "W10", "%%%", "=", "AAAA", Buffer.from('{"tenant":"dev","created_at":1e21}').toString("base64url")),
      fc.tuple(fc.constantFrom(...prototypeKeys), nastyString).map(([k, v]) => Buffer.from(JSON.stringify(ownObject([["batch_id", seeds.batch], [k, v]]))).toString("base64url")),
    );
    const option = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    // A query is bad in at least one part: the id, the limit or the cursor.
    const query = fc.oneof(
      fc.record({ id: fc.constant<string | undefined>(seeds.batch), limit: option(goodLimit), cursor: badCursor }),
      fc.record({ id: fc.constant<string | undefined>(seeds.batch), limit: badLimit, cursor: option(badCursor) }),
      fc.record({ id: strangerId().map((id): string | undefined => id), limit: option(fc.oneof(goodLimit, badLimit)), cursor: option(badCursor) }),
      fc.record({ id: fc.constant(undefined), limit: option(goodLimit), cursor: badCursor }),
      fc.record({ id: fc.constant(undefined), limit: badLimit, cursor: option(badCursor) }),
    );
    await fc.assert(
      fc.asyncProperty(query, async ({ id, limit: l, cursor: c }) => {
        const params = [l === undefined ? "" : `limit=${encodeURIComponent(l.toWellFormed())}`, c === undefined ? "" : `cursor=${encodeURIComponent(c.toWellFormed())}`].filter(Boolean).join("&");
        const path = id === undefined ? "/v1/batches" : `/v1/batches/${inPath(id)}/results`;
        const request = { method: "GET", path: `${path}${params ? `?${params}` : ""}`, headers: auth() };
        expectDocumentedError(request, await send(request), [400, 404]);
      }),
      fuzzParams(50, 4),
    );
    expect(await traces()).toEqual(baseline);
  }, FUZZ_TIMEOUT_MS);

  it("PUT /v1/routes/{model}/settings: bad patches are 400, unknown models 404, a member key 403, and nothing is stored", async () => {
    const settingsBefore = await itemCount("route-settings");
    const route = catalog.routes.get("llama-2-7b");
    if (!route) throw new Error("no llama-2-7b route");
    const wouldAccept = (text: string) => {
      try {
        checkRouteSettings(route, defaultRouteSettings(route), JSON.parse(text));
        return true;
      } catch {
        return false;
      }
    };
    const patch = fc.oneof(
      fc.array(fc.tuple(fc.constantFrom("dispatch", "top_up", "max_in_flight_per_copy", "max_wait_ms", "latency_objective_ms", "warming_recheck_seconds", ...prototypeKeys), fc.oneof(junkJson, numberToken.map((n) => ({ raw: n })))), { minLength: 1, maxLength: 4 })
        .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${typeof v === "object" && v !== null && "raw" in v ? (v as { raw: string }).raw : JSON.stringify(v) ?? "null"}`).join(",")}}`),
      junkJson.map((v) => JSON.stringify(v) ?? ""),
      fc.constant('{"max_in_flight_per_copy": 4}').chain(mangledJsonText),
      nastyString,
    );
    const requests = fc.oneof(
      { weight: 3, arbitrary: patch.filter((p) => !wouldAccept(p)).map((body) => ({ request: { method: "PUT", path: "/v1/routes/llama-2-7b/settings", headers: { ...auth(), "content-type": "application/json" }, body }, statuses: [400] })) },
      { weight: 1, arbitrary: fc.tuple(strangerId(), patch).map(([model, body]) => ({ request: { method: "PUT", path: `/v1/routes/${inPath(model)}/settings`, headers: auth(), body }, statuses: [400, 404] })) },
      { weight: 1, arbitrary: patch.map((body) => ({ request: { method: "PUT", path: "/v1/routes/llama-2-7b/settings", headers: { authorization: `Bearer ${otherKey}` }, body }, statuses: [400, 403] })) },
    );
    await fc.assert(
      fc.asyncProperty(requests, async ({ request, statuses }) => {
        expectDocumentedError(request, await send(request), statuses);
      }),
      fuzzParams(30, 5),
    );
    expect(await itemCount("route-settings")).toBe(settingsBefore);
    expect(await traces()).toEqual(baseline);
  }, FUZZ_TIMEOUT_MS);

  it("every route: a missing or garbled Authorization header is 401, whatever else the request says", async () => {
    const latin1 = fc.string({ unit: fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((c) => String.fromCharCode(c)), maxLength: 60 });
    const header = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom("Bearer", "Bearer x y", "Basic dXNlcjpwYXNz", "Token abc", `${apiKey}`, `Bearer ${apiKey}x`, `Bearer ${apiKey} extra`, `Bearer ${apiKey.slice(0, -1)}`, `Bearer bl_${"A".repeat(43)}`, `Bearer ${"k".repeat(8000)}`, `Bearer ${apiKey},Bearer ${apiKey}`),
      latin1.map((s) => `Bearer ${s}`),
      latin1,
    );
    const target = fc.constantFrom(
      { method: "POST", path: "/v1/jobs", body: JSON.stringify({ model: "llama-2-7b", prompt: "hi", max_tokens: 2 }) },
      { method: "POST", path: "/v1/batches", body: JSON.stringify({ custom_id: "a", body: { model: "llama-2-7b", prompt: "hi", max_tokens: 2 } }) },
      { method: "GET", path: `/v1/jobs/${seeds.job}` },
      { method: "DELETE", path: `/v1/jobs/${seeds.job}` },
      { method: "GET", path: `/v1/batches/${seeds.batch}/results?limit=1` },
      { method: "PUT", path: "/v1/routes/llama-2-7b/settings", body: '{"top_up":false}' },
      { method: "GET", path: "/v1/models" },
    );
    await fc.assert(
      fc.asyncProperty(header, target, async (authorization, t) => {
        const request: Request = { ...t, headers: authorization === undefined ? {} : { authorization } };
        expectDocumentedError(request, await send(request), [401]);
      }),
      fuzzParams(40, 6),
    );
    expect(await traces()).toEqual(baseline);
  }, FUZZ_TIMEOUT_MS);

  it("refuses a 6 MB prompt and a 50,001-line batch file at once, writing nothing", async () => {
    const cases: { request: Request; statuses: number[] }[] = [
      { request: { method: "POST", path: "/v1/jobs", headers: auth(), body: JSON.stringify({ model: "llama-2-7b", prompt: "x".repeat(6 * 1024 * 1024 - 4096), max_tokens: 4 }) }, statuses: [400] },
      { request: { method: "POST", path: "/v1/batches", headers: auth(), body: "{}\n".repeat(50_001) }, statuses: [413] },
    ];
    for (const { request, statuses } of cases) {
      const started = performance.now();
      expectDocumentedError(request, await send(request), statuses);
      // Counting the prompt's tokens took over a minute; refusing it should take a request's time.
      expect(performance.now() - started).toBeLessThan(20_000);
    }
    expect(await traces()).toEqual(baseline);
  }, FUZZ_TIMEOUT_MS);

  it("answers requests that reach no function (unknown routes, bad percent-encoding) with a 4xx in JSON", async () => {
    // These are answered by the gateway, not by batchline: serverless-offline (like API Gateway)
    // uses its own body, so only the status and the JSON are checked here.
    for (const [method, path] of [["GET", "/v1/jobs/"], ["GET", "/v1/jobs/a/b"], ["PATCH", "/v1/jobs/x"], ["GET", "/v1/jobs/%"], ["GET", "/v1/jobs/%ED%A0%80"], ["POST", "/v1/nope"]] as const) {
      const answer = await send({ method, path, headers: auth() });
      expect(answer.status, `${method} ${path}: ${answer.text}`).toBeGreaterThanOrEqual(400);
      expect(answer.status, `${method} ${path}: ${answer.text}`).toBeLessThan(500);
      expect(() => JSON.parse(answer.text)).not.toThrow();
    }
    expect(await traces()).toEqual(baseline);
  }, FUZZ_TIMEOUT_MS);
});

// --- WebSocket ----------------------------------------------------------------------------------

describe("junk frames on a real WebSocket", () => {
  it("answers each with one error event, writes nothing, and the connection still serves a valid subscribe", async () => {
    const client = await EventClient.connect(stack.ws, apiKey);
    const subscriptions = await itemCount("subscriptions");
    const connections = await itemCount("connections");
    const idsOf = fc.oneof(
      fc.array(fc.oneof(strangerId(), fc.constant(seeds.job)), { minLength: 1, maxLength: 6 }).filter((ids) => ids.some((id) => id !== seeds.job)),
      fc.integer({ min: 101, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => `job_${i}`)),
      fc.constant(Array.from({ length: 100 }, (_, i) => `${seeds.foreignJob.slice(0, -3)}${String(i).padStart(3, "0")}`)),
      fc.constant([] as string[]),
    );
    const frame: fc.Arbitrary<string | Buffer> = fc.oneof(
      nastyString,
      junkJson.map((v) => JSON.stringify(v) ?? ""),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)),
      fc.record({ action: fc.constantFrom("subscribe", "cancel"), job_ids: idsOf }, { requiredKeys: ["action", "job_ids"] }).map((f) => JSON.stringify(f)),
      fc.tuple(fc.constantFrom("subscribe", "cancel"), strangerId()).map(([action, batch_id]) => JSON.stringify({ action, batch_id })),
      fc.constantFrom(JSON.stringify({ action: "cancel", job_ids: [seeds.job] }), JSON.stringify({ action: "cancel", batch_id: seeds.foreignBatch }), JSON.stringify({ action: "subscribe", job_ids: [seeds.job], batch_id: seeds.batch })),
      fc.tuple(fc.constantFrom("subscribe", "cancel"), fc.boolean(), fc.integer({ min: 257, max: 3000 })).map(([action, batch, n]) =>
        JSON.stringify(batch ? { action, batch_id: "b".repeat(n) } : { action, job_ids: [seeds.job, "j".repeat(n)] }),
      ),
      jobWithInvalid(routes, new Date(), { min: 1, max: 2 }).map(({ job }) => JSON.stringify({ action: "submit", job, request_id: "bad-job" })),
      fc.tuple(fc.oneof(nastyString, fc.constantFrom(null, 1, [], {}, "SUBSCRIBE", "__proto__")), junkJson).map(([action, extra]) => JSON.stringify(ownObject([["action", action], ["job_ids", [seeds.job]], ["x", extra]]))),
      fc.constantFrom("subscribe", "cancel").map((action) => JSON.stringify({ action, job_ids: [seeds.job], request_id: "r".repeat(129) })),
      fc.constant(JSON.stringify({ action: "subscribe", job_ids: [seeds.job] })).chain(mangledJsonText).filter((text) => {
        try {
          JSON.parse(text);
          return false;
        } catch {
          return true;
        }
      }),
    );
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        const seen = client.events.length;
        client.sendRaw(f);
        sent += 1;
        frames += 1;
        const events = await client.waitUntil((e) => e.length > seen, 30_000);
        const answer = events[seen] as Event & { error?: { code?: unknown; message?: unknown } };
        const where = `${String(f).slice(0, 300)} -> ${JSON.stringify(answer).slice(0, 300)}`;
        expect(answer.type, where).toBe("error");
        expect(typeof answer.error?.code, where).toBe("string");
        expect(typeof answer.error?.message === "string" && answer.error.message.trim() !== "", where).toBe(true);
        expect(client.open, where).toBe(true);
      }),
      fuzzParams(60, 7),
    );
    expect(await itemCount("subscriptions")).toBe(subscriptions);
    expect(await itemCount("connections")).toBe(connections);
    expect(await traces()).toEqual(baseline);

    // Still open and serving: a valid subscribe to a finished job gets subscribed and the final event.
    const seen = client.events.length;
    client.send({ action: "subscribe", job_ids: [seeds.job] });
    const events = await client.waitUntil((e) => e.slice(seen).some((x) => x.type === "job.succeeded"), 30_000);
    expect(events.slice(0, seen).filter((e) => e.type !== "error")).toEqual([]);
    expect(seen).toBe(sent);
    expect(events.slice(seen).map((e) => e.type)).toEqual(["subscribed", "job.succeeded"]);
    client.close();
  }, FUZZ_TIMEOUT_MS);
});

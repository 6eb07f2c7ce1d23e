import { execFile } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { parse as parseYaml } from "yaml";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerDevApiKey } from "#local/dev-key";
import { startSageMakerEmulator } from "#local/sagemaker/server";
import { oslsCommand, oslsEnv, scratchService, type ScratchService } from "#local/osls";
import { provisionQueues, provisionTables } from "#local/provision";
import { parseTemplate } from "#local/template";
import { loadRouteCatalog } from "#shared/config";
import { generateApiKey } from "#shared/core/api-keys";
import { promptTextOf, type ChatMessage } from "#shared/core/prompt";
import type { TokenizerName } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { localClientConfig, localDocumentClient, startDynalite, startFauxqs, type LocalServer } from "../helpers/local-aws.ts";
import { unzip } from "../helpers/zip.ts";

// `osls package` as a deployment runs it, bundles included, with no AWS credentials: the
// CloudFormation that would deploy holds every part of the pipeline.
type Resource = { Type: string; Properties: Record<string, any> };
let template: { Resources: Record<string, Resource> };
let resources: Record<string, Resource>;
let artifacts: string[];
let service: ScratchService;
let out: string;

const ofType = (type: string) => Object.values(resources).filter((r) => r.Type === type);

beforeAll(async () => {
  service = await scratchService(process.cwd());
  out = await mkdtemp(join(tmpdir(), "batchline-package-"));
  const { command, args } = oslsCommand(["package", "--stage", "pkg", "--package", out]);
  await promisify(execFile)(command, args, { cwd: service.dir, env: oslsEnv(), timeout: 170_000 });
  template = JSON.parse(await readFile(join(out, "cloudformation-template-update-stack.json"), "utf8"));
  resources = template.Resources;
  artifacts = await readdir(out);
});

afterAll(async () => {
  await service?.remove();
  if (out) await rm(out, { recursive: true, force: true });
});

describe("osls package", () => {
  it("has the route's queue per lane, batch control's and the webhooks', each redriven to its DLQ", () => {
    const queues = ofType("AWS::SQS::Queue");
    const routes = [...loadRouteCatalog("infra/routes.yml").routes.keys()];
    const lanes = (r: string) => [`batchline-pkg-${r}`, `batchline-pkg-${r}-interactive`];
    const others = ["batchline-pkg-batch-control", "batchline-pkg-batch-control-dlq", "batchline-pkg-webhooks", "batchline-pkg-webhooks-dlq"];
    expect(queues.map((q) => q.Properties.QueueName).sort()).toEqual([...routes.flatMap((r) => lanes(r).flatMap((q) => [q, `${q}-dlq`])), ...others].sort());
    const main = queues.find((q) => q.Properties.QueueName === "batchline-pkg-llama-2-7b");
    expect(main?.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { "Fn::GetAtt": ["Llama27bDeadLetterQueue", "Arn"] }, maxReceiveCount: 5 });
  });

  it("has every table, with TTL on the records that expire", () => {
    const tables = ofType("AWS::DynamoDB::Table");
    expect(tables.map((t) => t.Properties.TableName).sort()).toEqual(
      ["api-keys", "batches", "capacity", "connections", "files", "idempotency-keys", "jobs", "queue-board", "route-settings", "subscriptions", "tenants", "usage", "webhook-endpoints", "ws-tickets"].map((n) => `batchline-pkg-${n}`),
    );
    const jobs = tables.find((t) => t.Properties.TableName === "batchline-pkg-jobs");
    expect(jobs?.Properties.TimeToLiveSpecification).toEqual({ AttributeName: "expires_at", Enabled: true });
  });

  it("maps the queue to the batcher with the route's window and partial batch responses", () => {
    const mappings = ofType("AWS::Lambda::EventSourceMapping");
    const batcher = mappings.find((m) => m.Properties.EventSourceArn["Fn::GetAtt"][0] === "Llama27bQueue");
    const { window } = parseYaml(readFileSync("infra/routes.yml", "utf8")).routes["llama-2-7b"];
    expect(batcher?.Properties).toMatchObject({
      BatchSize: window.batch_size,
      MaximumBatchingWindowInSeconds: window.batching_window_seconds,
      ScalingConfig: { MaximumConcurrency: window.maximum_concurrency },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      FunctionName: { "Fn::GetAtt": ["BatcherLambdaFunction", "Arn"] },
    });
    const deadLetter = mappings.find((m) => m.Properties.EventSourceArn["Fn::GetAtt"][0] === "Llama27bDeadLetterQueue");
    expect(deadLetter?.Properties.FunctionName).toEqual({ "Fn::GetAtt": ["DeadLetterLambdaFunction", "Arn"] });
    const webhooks = mappings.find((m) => m.Properties.EventSourceArn["Fn::GetAtt"][0] === "WebhooksQueue");
    expect(webhooks?.Properties).toMatchObject({ BatchSize: 10, FunctionResponseTypes: ["ReportBatchItemFailures"], FunctionName: { "Fn::GetAtt": ["WebhookDeliveryLambdaFunction", "Arn"] } });
  });

  it("has the HTTP API with every route and the WebSocket API with its three routes", () => {
    const apis = ofType("AWS::ApiGatewayV2::Api").map((a) => a.Properties.ProtocolType).sort();
    expect(apis).toEqual(["HTTP", "WEBSOCKET"]);
    const routeKeys = ofType("AWS::ApiGatewayV2::Route").map((r) => r.Properties.RouteKey).sort();
    expect(routeKeys).toEqual(
      ["$connect", "$default", "$disconnect", "DELETE /v1/jobs/{id}", "POST /v1/batches/{id}/cancel", "GET /v1/batches", "GET /v1/batches/{id}", "GET /v1/batches/{id}/results", "GET /v1/jobs/{id}", "GET /v1/models", "GET /v1/routes/{model}/settings", "POST /v1/batches", "POST /v1/jobs", "POST /v1/ws-tickets", "PUT /v1/routes/{model}/settings",
        "POST /v1/files", "GET /v1/files", "GET /v1/files/{id}", "GET /v1/files/{id}/content", "DELETE /v1/files/{id}", "POST /v1/uploads", "POST /v1/uploads/{id}/complete", "POST /v1/webhooks", "GET /v1/webhooks", "DELETE /v1/webhooks/{id}", "GET /v1/metrics",
        "POST /v1/routes/{model}/settings/predict", "GET /v1/routes/{model}/trace"].sort(),
    );
  });

  it("gives each function its own role, allowed only what its code calls", () => {
    const functions = ofType("AWS::Lambda::Function");
    const roles = new Set(functions.map((fn) => JSON.stringify(fn.Properties.Role)));
    expect(roles.size).toBe(functions.length);
    expect(resources.IamRoleLambdaExecution).toBeUndefined();
    const allowed = (role: string) =>
      (resources[role]?.Properties.Policies[0].PolicyDocument.Statement as { Action: string[] }[]).flatMap((s) => s.Action);
    expect(allowed("ModelsRole")).toEqual(["logs:CreateLogStream", "logs:PutLogEvents", "dynamodb:GetItem"]);
    expect(allowed("BatcherRole")).toEqual(expect.arrayContaining(["sagemaker:InvokeEndpoint", "sqs:ReceiveMessage", "execute-api:ManageConnections"]));
    for (const role of ["JobsRole", "BatchesRole", "WsMessageRole", "RouteSettingsRole", "WsConnectRole"]) {
      expect(allowed(role)).not.toContain("sagemaker:InvokeEndpoint");
    }
    expect(allowed("WsConnectRole")).not.toContain("sqs:SendMessage");
    expect(JSON.stringify(resources)).not.toMatch(/"Action":\s*\[?"(\*|dynamodb:\*|sqs:\*)"/);
  });

  it("packages every function for Node 22, one bundle each", () => {
    const functions = ofType("AWS::Lambda::Function");
    expect(functions).toHaveLength(16);
    for (const fn of functions) expect(fn.Properties.Runtime).toBe("nodejs22.x");
    expect(artifacts.filter((a) => a.endsWith(".zip")).sort()).toEqual(
      ["batchControl", "batchSweep", "batcher", "batches", "deadLetter", "files", "jobs", "metrics", "models", "routeSettings", "webhookDelivery", "webhooks", "wsConnect", "wsDisconnect", "wsMessage", "wsTickets"].map((n) => `${n}.zip`),
    );
  });
});

/**
 * The artifacts as Lambda gets them: each zip unpacked into a folder of its own with no
 * node_modules above it, its handler run by a Node process of its own, so nothing resolves from
 * this project. The jobs function takes real submissions against the stage's tables and queues
 * (dynalite and fauxqs, provisioned from the package's CloudFormation): the prompt tokens it
 * records are counted by the code and tokenizers inside its zip.
 */
describe("osls package: the artifacts run alone", () => {
  const apiKey = generateApiKey();
  let unpacked: string;
  let dynamodb: LocalServer;
  let sqs: LocalServer;
  const entries: Record<string, string[]> = {};

  beforeAll(async () => {
    unpacked = await mkdtemp(join(tmpdir(), "batchline-artifacts-"));
    for (const fn of ["jobs", "batcher", "webhooks", "webhookDelivery", "metrics"]) entries[fn] = await unzip(join(out, `${fn}.zip`), join(unpacked, fn));
    await writeFile(join(unpacked, "run.mjs"), RUNNER);
    [dynamodb, sqs] = await Promise.all([startDynalite(), startFauxqs()]);
    const local = parseTemplate(template);
    const ddb = new DynamoDBClient(localClientConfig(dynamodb.endpoint));
    await provisionTables(ddb, local.tables);
    await provisionQueues(new SQSClient(localClientConfig(sqs.endpoint)), local.queues);
    await registerDevApiKey(ddb, "batchline-pkg-api-keys", apiKey, new Date());
  });

  afterAll(async () => {
    await Promise.all([dynamodb?.close(), sqs?.close()]);
    if (unpacked) await rm(unpacked, { recursive: true, force: true });
  });

  type Run = { tokenizerPath: string | null; llama3Tokens: number | null; responses: { statusCode: number; body: string }[] };

  /** Imports the function's handler in a fresh Node, in the unpacked folder, and calls it with each event. */
  async function runAlone(fn: string, events: readonly object[] = [], options: { dir?: string; env?: Record<string, string> } = {}): Promise<Run> {
    const root = join(unpacked, fn);
    const env = {
      ...options.env,
      PATH: process.env.PATH ?? "",
      LAMBDA_TASK_ROOT: root,
      BATCHLINE_RESOURCE_PREFIX: "batchline-pkg",
      BATCHLINE_WS_ENDPOINT: "http://127.0.0.1:9",
      BATCHLINE_LOG_LEVEL: "ERROR",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL_DYNAMODB: dynamodb.endpoint,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    };
    const [eventsFile, resultFile] = [join(unpacked, `${fn}-events.json`), join(unpacked, `${fn}-result.json`)];
    await writeFile(eventsFile, JSON.stringify(events));
    const handler = join(root, "functions", options.dir ?? fn, "handler.mjs");
    await promisify(execFile)(process.execPath, [join(unpacked, "run.mjs"), handler, eventsFile, resultFile], { cwd: root, env, timeout: 60_000 });
    return JSON.parse(await readFile(resultFile, "utf8")) as Run;
  }

  const http = (routeKey: string, path: string, body: object) => ({
    version: "2.0",
    routeKey,
    rawPath: path,
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: { http: { method: routeKey.split(" ")[0], path }, requestId: "r-2", routeKey, stage: "$default" },
  });

  const submission = (job: object) => ({
    version: "2.0",
    routeKey: "POST /v1/jobs",
    rawPath: "/v1/jobs",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(job),
    isBase64Encoded: false,
    requestContext: { http: { method: "POST", path: "/v1/jobs" }, requestId: "r-1", routeKey: "POST /v1/jobs", stage: "$default" },
  });

  const chat: ChatMessage[] = [
    { role: "system", content: "You answer in one line." },
    { role: "user", content: "Which queue comes first?" },
    { role: "assistant", content: "The oldest." },
    { role: "user", content: "Why?" },
  ];

  it("ships the Llama-3 tokenizer beside the bundle, and bundles Llama 2's", () => {
    for (const fn of ["jobs", "batcher"]) {
      expect(entries[fn]?.filter((e) => e.startsWith("node_modules/")).sort()).toEqual([
        "node_modules/llama3-tokenizer-js/LICENSE.md",
        "node_modules/llama3-tokenizer-js/bundle/llama3-tokenizer-with-baked-data.js",
        "node_modules/llama3-tokenizer-js/package.json",
      ]);
    }
  });

  it("counts the tokens of Llama-3 and Llama-2 prompts and chats in the jobs function", async () => {
    const jobs: { model: string; tokenizer: TokenizerName; request: { prompt?: string; messages?: ChatMessage[] } }[] = [
      { model: "llama-3-8b", tokenizer: "llama3", request: { prompt: "Write a haiku about queues." } },
      { model: "llama-3-1b", tokenizer: "llama3", request: { messages: chat } },
      { model: "llama-2-7b", tokenizer: "llama2", request: { prompt: "Write a haiku about queues." } },
      { model: "llama-2-7b", tokenizer: "llama2", request: { messages: chat } },
    ];
    const run = await runAlone("jobs", jobs.map((j) => submission({ model: j.model, max_tokens: 16, ...j.request })));
    const table = localDocumentClient(dynamodb.endpoint);
    for (const [i, job] of jobs.entries()) {
      const response = run.responses[i];
      expect(response?.statusCode, response?.body).toBe(202);
      const { job_id } = JSON.parse(response?.body ?? "{}") as { job_id: string };
      const stored = (await table.send(new GetCommand({ TableName: "batchline-pkg-jobs", Key: { job_id } }))).Item;
      expect(stored?.prompt_tokens).toBe(tokenCounter(job.tokenizer).countPrompt(promptTextOf(job.request, job.tokenizer)));
    }
    expect(run.tokenizerPath).toBe(join(unpacked, "jobs", "node_modules", "llama3-tokenizer-js", "bundle", "llama3-tokenizer-with-baked-data.js"));
  });

  it("registers a webhook endpoint, and delivers an event signed by the standardwebhooks inside the bundle", async () => {
    const received: { headers: Record<string, string>; body: string }[] = [];
    const receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      request.on("end", () => {
        received.push({ headers: request.headers as Record<string, string>, body });
        response.writeHead(204).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const env = { BATCHLINE_ALLOW_LOOPBACK_WEBHOOKS: "true" };
      const created = await runAlone("webhooks", [http("POST /v1/webhooks", "/v1/webhooks", { url })], { env });
      expect(created.responses[0]?.statusCode, created.responses[0]?.body).toBe(201);
      const { secret } = JSON.parse(created.responses[0]?.body ?? "{}") as { secret: string };

      const event = { id: "evt_0a1b", tenant: "dev", type: "batch.completed", created_at: 1_800_000_000, data: { id: "batch_1" } };
      const record = { messageId: "m-1", receiptHandle: "rh-1", body: JSON.stringify({ kind: "event", event }), attributes: { ApproximateReceiveCount: "1" }, messageAttributes: {}, md5OfBody: "", eventSource: "aws:sqs", eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:batchline-pkg-webhooks", awsRegion: "us-east-1" };
      const delivered = await runAlone("webhookDelivery", [{ Records: [record] }], { dir: "webhook-delivery", env });
      expect(delivered.responses[0]).toEqual({ batchItemFailures: [] });
      expect(received).toHaveLength(1);
      expect(new Webhook(secret).verify(received[0]?.body ?? "", received[0]?.headers ?? {})).toMatchObject({ id: "evt_0a1b", object: "event", data: { id: "batch_1" } });
    } finally {
      receiver.close();
    }
  });

  it("answers GET /v1/metrics as Prometheus text with the prom-client inside its bundle, reading the stage's queues and the emulator", async () => {
    const emulator = await startSageMakerEmulator({ catalog: loadRouteCatalog("infra/routes.yml"), port: 0, resourcePrefix: "batchline-pkg" });
    try {
      const request = { ...http("GET /v1/metrics", "/v1/metrics", {}), body: undefined, headers: { authorization: `Bearer ${apiKey}`, accept: "text/plain" } };
      const env = { BATCHLINE_METRICS_SOURCE: "embedded", AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: emulator.url, AWS_ENDPOINT_URL_SAGEMAKER: emulator.url };
      const run = await runAlone("metrics", [request], { env });
      const response = run.responses[0] as { statusCode: number; headers: Record<string, string>; body: string } | undefined;
      expect(response?.statusCode, response?.body).toBe(200);
      expect(response?.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(response?.body).toMatch(/^batchline_queue_messages\{route="llama-2-7b",lane="interactive",state="visible"\} \d+$/m);
      expect(response?.body).toMatch(/^batchline_copies\{component="llama-2-7b-ic",state="serving"\} 1$/m);
    } finally {
      await emulator.close();
    }
  });

  it("loads the batcher, whose Llama-3 tokenizer resolves inside its package", async () => {
    const run = await runAlone("batcher");
    expect(run.tokenizerPath).toBe(join(unpacked, "batcher", "node_modules", "llama3-tokenizer-js", "bundle", "llama3-tokenizer-with-baked-data.js"));
    expect(run.llama3Tokens).toBe(tokenCounter("llama3").countPrompt("Write a haiku about queues."));
  });
});

/**
 * The child: imports the handler as Lambda's runtime does and calls it with each event (argv:
 * handler file, events file, result file). Then it resolves and loads the Llama-3 tokenizer the
 * way shared/core/tokens.ts does, from the bundle's own file (null where it is not there).
 */
const RUNNER = `
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const [file, eventsFile, resultFile] = process.argv.slice(2);
const url = pathToFileURL(file).href;
const { handler } = await import(url);
const context = {
  functionName: "batchline-pkg-fn", functionVersion: "$LATEST", memoryLimitInMB: "512", awsRequestId: "req-1",
  invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:batchline-pkg-fn",
  logGroupName: "/aws/lambda/batchline-pkg-fn", logStreamName: "local", callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 29000,
};
const responses = [];
for (const event of JSON.parse(readFileSync(eventsFile, "utf8"))) responses.push(await handler(event, context));
const require = createRequire(url);
let tokenizerPath = null, llama3Tokens = null;
try {
  tokenizerPath = require.resolve("llama3-tokenizer-js");
  llama3Tokens = require("llama3-tokenizer-js").default.encode("Write a haiku about queues.", { bos: true, eos: false }).length;
} catch {}
writeFileSync(resultFile, JSON.stringify({ tokenizerPath, llama3Tokens, responses }));
process.exit(0);
`;

import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oslsCommand, oslsEnv, scratchService, type ScratchService } from "#local/osls";
import { loadRouteCatalog } from "#shared/config";

// `osls package` as a deployment runs it, bundles included, with no AWS credentials: the
// CloudFormation that would deploy holds every part of the pipeline.
type Resource = { Type: string; Properties: Record<string, any> };
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
  const template = JSON.parse(await readFile(join(out, "cloudformation-template-update-stack.json"), "utf8"));
  resources = template.Resources;
  artifacts = await readdir(out);
});

afterAll(async () => {
  await service?.remove();
  if (out) await rm(out, { recursive: true, force: true });
});

describe("osls package", () => {
  it("has the route's queue, redriven to its DLQ", () => {
    const queues = ofType("AWS::SQS::Queue");
    const routes = [...loadRouteCatalog("infra/routes.yml").routes.keys()];
    expect(queues.map((q) => q.Properties.QueueName).sort()).toEqual(routes.flatMap((r) => [`batchline-pkg-${r}`, `batchline-pkg-${r}-dlq`]).sort());
    const main = queues.find((q) => q.Properties.QueueName === "batchline-pkg-llama-2-7b");
    expect(main?.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { "Fn::GetAtt": ["Llama27bDeadLetterQueue", "Arn"] }, maxReceiveCount: 5 });
  });

  it("has every table, with TTL on the records that expire", () => {
    const tables = ofType("AWS::DynamoDB::Table");
    expect(tables.map((t) => t.Properties.TableName).sort()).toEqual(
      ["api-keys", "batches", "capacity", "connections", "idempotency-keys", "jobs", "route-settings", "subscriptions", "tenants", "usage", "ws-tickets"].map((n) => `batchline-pkg-${n}`),
    );
    const jobs = tables.find((t) => t.Properties.TableName === "batchline-pkg-jobs");
    expect(jobs?.Properties.TimeToLiveSpecification).toEqual({ AttributeName: "expires_at", Enabled: true });
  });

  it("maps the queue to the batcher with the route's window and partial batch responses", () => {
    const mappings = ofType("AWS::Lambda::EventSourceMapping");
    const batcher = mappings.find((m) => m.Properties.EventSourceArn["Fn::GetAtt"][0] === "Llama27bQueue");
    expect(batcher?.Properties).toMatchObject({
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 0,
      ScalingConfig: { MaximumConcurrency: 2 },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      FunctionName: { "Fn::GetAtt": ["BatcherLambdaFunction", "Arn"] },
    });
    const deadLetter = mappings.find((m) => m.Properties.EventSourceArn["Fn::GetAtt"][0] === "Llama27bDeadLetterQueue");
    expect(deadLetter?.Properties.FunctionName).toEqual({ "Fn::GetAtt": ["DeadLetterLambdaFunction", "Arn"] });
  });

  it("has the HTTP API with every route and the WebSocket API with its three routes", () => {
    const apis = ofType("AWS::ApiGatewayV2::Api").map((a) => a.Properties.ProtocolType).sort();
    expect(apis).toEqual(["HTTP", "WEBSOCKET"]);
    const routeKeys = ofType("AWS::ApiGatewayV2::Route").map((r) => r.Properties.RouteKey).sort();
    expect(routeKeys).toEqual(
      ["$connect", "$default", "$disconnect", "DELETE /v1/jobs/{id}", "POST /v1/batches/{id}/cancel", "GET /v1/batches", "GET /v1/batches/{id}", "GET /v1/batches/{id}/results", "GET /v1/jobs/{id}", "GET /v1/models", "GET /v1/routes/{model}/settings", "POST /v1/batches", "POST /v1/jobs", "POST /v1/ws-tickets", "PUT /v1/routes/{model}/settings"].sort(),
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
    expect(functions).toHaveLength(10);
    for (const fn of functions) expect(fn.Properties.Runtime).toBe("nodejs22.x");
    expect(artifacts.filter((a) => a.endsWith(".zip")).sort()).toEqual(
      ["batcher", "batches", "deadLetter", "jobs", "models", "routeSettings", "wsConnect", "wsDisconnect", "wsMessage", "wsTickets"].map((n) => `${n}.zip`),
    );
  });
});

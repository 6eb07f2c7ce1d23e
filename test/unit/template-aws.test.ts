import { eventSourceMappingRefusal } from "#shared/core/event-source-mapping-rules";
import { createRequire } from "node:module";
import { beforeAll, describe, expect, it } from "vitest";
import { packageTemplate } from "#local/template";

// What the stack that deploys to AWS holds, read from the CloudFormation `osls package`
// generates: once with every stage knob at its default, once with each set (`--param`), as a
// stage's `params` would.

type Resource = {
  Type: string;
  Properties: Record<string, any>;
  DependsOn?: string | string[];
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
};
type Template = { Resources: Record<string, Resource>; Outputs: Record<string, { Value: unknown }> };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

const projectDir = process.cwd();
const stage = "aws";
const prefix = `batchline-${stage}`;
const knobs = {
  tracing: "true",
  logRetentionInDays: "90",
  httpThrottlingBurstLimit: "11",
  httpThrottlingRateLimit: "4.5",
  websocketThrottlingBurstLimit: "7",
  websocketThrottlingRateLimit: "3",
  apiGatewayCloudWatchRole: "external",
  tableDeletionPolicy: "Delete",
};

let defaults: Template;
let knobbed: Template;

beforeAll(async () => {
  [defaults, knobbed] = (await Promise.all([packageTemplate({ projectDir, stage }), packageTemplate({ projectDir, stage, params: knobs })])) as [Template, Template];
});

const ofType = (t: Template, type: string) => Object.entries(t.Resources).filter(([, r]) => r.Type === type);
/** An ARN or URL the template builds with Fn::Join, as text: `{Ref}` for each Ref, `{X.Attr}` for each GetAtt. */
function text(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    if ("Fn::Join" in value) {
      const [separator, parts] = (value as { "Fn::Join": [string, unknown[]] })["Fn::Join"];
      return parts.map(text).join(separator);
    }
    if ("Ref" in value) return `{${(value as { Ref: string }).Ref}}`;
    if ("Fn::GetAtt" in value) return `{${(value as { "Fn::GetAtt": string[] })["Fn::GetAtt"].join(".")}}`;
  }
  return JSON.stringify(value);
}
const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
/** The logical id a `{ "Fn::GetAtt": [id, "Arn"] }` or `{ Ref: id }` points at. */
const target = (value: any): string => value?.Ref ?? value?.["Fn::GetAtt"]?.[0];
const statementsOf = (role: Resource): Statement[] => role.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);
/** The roles the functions run with, by function logical id. */
const functionRoles = (t: Template) => ofType(t, "AWS::Lambda::Function").map(([id, fn]) => [id, fn, t.Resources[target(fn.Properties.Role)]] as const);

describe("queues", () => {
  it("are each read by a mapping that reports batch item failures, with a batch AWS takes", () => {
    const mappings = ofType(defaults, "AWS::Lambda::EventSourceMapping");
    expect(mappings.length).toBeGreaterThan(0);
    for (const [id, m] of mappings) {
      expect(m.Properties.FunctionResponseTypes, id).toEqual(["ReportBatchItemFailures"]);
      // Every setting CreateEventSourceMapping takes: ranges, and BatchSize over 10 only with a window.
      expect(eventSourceMappingRefusal(m.Properties), id).toBeUndefined();
    }
    const read = new Set(mappings.map(([, m]) => target(m.Properties.EventSourceArn)));
    // Two DLQs have no reader: batch control's (the sweep carries its batches on: a stale finalize
    // sent again, a batch left validating failed at its window's end) and the webhooks' (deliveries
    // given up after a day): their messages wait there for ops.
    const queues = ofType(defaults, "AWS::SQS::Queue").map(([id]) => id);
    const unreadByDesign = ["BatchControlDeadLetterQueue", "WebhooksDeadLetterQueue"];
    expect(queues.filter((id) => !unreadByDesign.includes(id)).sort()).toEqual([...read].sort());
    expect(queues).toEqual(expect.arrayContaining(unreadByDesign));
  });

  it("hide a message for at least six times the timeout of the function that reads it, as AWS advises", () => {
    for (const [, m] of ofType(defaults, "AWS::Lambda::EventSourceMapping")) {
      const queue = defaults.Resources[target(m.Properties.EventSourceArn)];
      const fn = defaults.Resources[target(m.Properties.FunctionName)];
      expect(fn?.Properties.Timeout).toBeGreaterThan(0);
      expect(queue?.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * fn!.Properties.Timeout);
    }
    // The batcher's, named: its timeout is the long one.
    const batcher = defaults.Resources.BatcherLambdaFunction!.Properties.Timeout;
    expect(batcher).toBeGreaterThanOrEqual(60);
    for (const [id, q] of ofType(defaults, "AWS::SQS::Queue").filter(([id, q]) => q.Properties.RedrivePolicy && id !== "WebhooksQueue")) {
      expect(q.Properties.VisibilityTimeout, id).toBeGreaterThanOrEqual(6 * batcher);
    }
  });

  it("each redrive to a dead-letter queue that keeps messages 14 days, all encrypted by SQS", () => {
    const queues = ofType(defaults, "AWS::SQS::Queue");
    const deadLetterIds = new Set(queues.flatMap(([, q]) => (q.Properties.RedrivePolicy ? [target(q.Properties.RedrivePolicy.deadLetterTargetArn)] : [])));
    expect(deadLetterIds.size).toBeGreaterThan(0);
    for (const [id, q] of queues) {
      expect(q.Properties.SqsManagedSseEnabled, id).toBe(true);
      if (deadLetterIds.has(id)) {
        expect(q.Properties.MessageRetentionPeriod, id).toBe(14 * 24 * 3600);
        expect(q.Properties.RedrivePolicy, id).toBeUndefined();
      } else {
        expect(q.Properties.RedrivePolicy?.maxReceiveCount, id).toBeGreaterThan(0);
        expect(queues.map(([other]) => other), id).toContain(target(q.Properties.RedrivePolicy.deadLetterTargetArn));
      }
    }
  });
});

describe("lanes", () => {
  const queueIds = (dead: boolean) =>
    ofType(defaults, "AWS::SQS::Queue")
      .filter(([id, q]) => !id.startsWith("Webhooks") && String(q.Properties.QueueName).endsWith("-dlq") === dead && !String(q.Properties.QueueName).includes("-batch-control"))
      .map(([id]) => id)
      .sort();
  /** What each function may do on SQS, by the queues its statements name. */
  const sqsGrants = (fnId: string) => {
    const [, , role] = functionRoles(defaults).find(([id]) => id === fnId) ?? [];
    return (role ? statementsOf(role) : [])
      .filter((s) => list(s.Action).some((a) => a.startsWith("sqs:")))
      .map((s) => ({ actions: list(s.Action).sort(), queues: list(s.Resource as unknown).map(target).sort() }));
  };

  it("give the functions both lanes' queues and no other: senders send, the batcher consumes and sends, the dead-letter function reads both DLQs", () => {
    const routeQueues = queueIds(false);
    const deadLetters = queueIds(true);
    expect(routeQueues.filter((id) => id.includes("Interactive"))).toHaveLength(routeQueues.length / 2);
    // Whoever may see an OpenAI batch's last job end may send its finalize step, and nothing else there.
    const toFinalize = { actions: ["sqs:GetQueueUrl", "sqs:SendMessage"], queues: ["BatchControlQueue"] };
    // The functions that end a batch (a create refused late, ingest, finalize, the sweep) send its webhook event.
    const webhookSend = { actions: ["sqs:GetQueueUrl", "sqs:SendMessage"], queues: ["WebhooksQueue"] };
    for (const fn of ["JobsLambdaFunction", "WsMessageLambdaFunction"]) {
      expect(sqsGrants(fn), fn).toEqual([{ actions: ["sqs:GetQueueUrl", "sqs:SendMessage"], queues: routeQueues }, toFinalize]);
    }
    expect(sqsGrants("BatchesLambdaFunction")).toEqual([{ actions: ["sqs:GetQueueUrl", "sqs:SendMessage"], queues: routeQueues }, toFinalize, webhookSend]);
    expect(sqsGrants("BatcherLambdaFunction")).toEqual([
      { actions: ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage"], queues: routeQueues },
      toFinalize,
    ]);
    expect(sqsGrants("DeadLetterLambdaFunction")).toEqual([{ actions: ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"], queues: deadLetters }, toFinalize]);
    expect(sqsGrants("BatchControlLambdaFunction")).toEqual([
      { actions: ["sqs:GetQueueUrl", "sqs:SendMessage"], queues: routeQueues },
      toFinalize,
      { actions: ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"], queues: ["BatchControlQueue"] },
      webhookSend,
    ]);
    expect(sqsGrants("BatchSweepLambdaFunction")).toEqual([toFinalize, webhookSend]);
    // The delivery function reads the webhooks queue, sends an endpoint's retries there and hides them for the backoff.
    expect(sqsGrants("WebhookDeliveryLambdaFunction")).toEqual([
      { actions: ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage"], queues: ["WebhooksQueue"] },
    ]);
    expect(sqsGrants("WebhooksLambdaFunction")).toEqual([]);
    // GET /v1/metrics reads the depths of every lane queue and dead-letter queue, and nothing else there.
    expect(sqsGrants("MetricsLambdaFunction")).toEqual([
      { actions: ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"], queues: routeQueues },
      { actions: ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"], queues: deadLetters },
    ]);
  });
});

describe("tables", () => {
  // Tables whose records carry `expires_at`: a job and its batch (retention_days), idempotency
  // keys, tickets, connections and their subscriptions, capacity leases, per-minute token usage,
  // files that expire and uploads in progress.
  const expiring = ["batches", "capacity", "connections", "files", "idempotency-keys", "jobs", "queue-board", "subscriptions", "usage", "ws-tickets"];
  // Lost with the stack, they would lose users' or operators' data.
  const kept = ["api-keys", "batches", "files", "idempotency-keys", "jobs", "route-settings", "tenants", "usage", "webhook-endpoints"];
  const tables = (t: Template) => ofType(t, "AWS::DynamoDB::Table").map(([, r]) => [String(r.Properties.TableName).slice(prefix.length + 1), r] as const);

  it("are on demand, encrypted with KMS and recoverable to a point in time", () => {
    expect(tables(defaults)).toHaveLength(14);
    for (const [name, t] of tables(defaults)) {
      expect(t.Properties, name).toMatchObject({
        BillingMode: "PAY_PER_REQUEST",
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      });
      expect(t.Properties.ProvisionedThroughput, name).toBeUndefined();
    }
  });

  it("expire the records that carry expires_at, and only those tables", () => {
    const withTtl = tables(defaults).filter(([, t]) => t.Properties.TimeToLiveSpecification);
    expect(withTtl.map(([name]) => name).sort()).toEqual(expiring);
    for (const [, t] of withTtl) expect(t.Properties.TimeToLiveSpecification).toEqual({ AttributeName: "expires_at", Enabled: true });
  });

  it("of users' data outlive the stack and a replacement, unless the stage says Delete", () => {
    for (const [name, t] of tables(defaults)) {
      const policy = kept.includes(name) ? "Retain" : undefined;
      expect([t.DeletionPolicy, t.UpdateReplacePolicy], name).toEqual([policy, policy]);
    }
    for (const [name, t] of tables(knobbed).filter(([name]) => kept.includes(name))) {
      expect([t.DeletionPolicy, t.UpdateReplacePolicy], name).toEqual(["Delete", "Delete"]);
    }
  });
});

describe("APIs", () => {
  const stages = (t: Template) => ({ http: t.Resources.HttpApiStage!, websocket: t.Resources.WebsocketsDeploymentStage! });

  it("throttle every route of both stages, with the stage's own limits where it sets them", () => {
    const { http, websocket } = stages(defaults);
    for (const s of [http, websocket]) {
      expect(Number(s.Properties.DefaultRouteSettings.ThrottlingBurstLimit)).toBeGreaterThan(0);
      expect(Number(s.Properties.DefaultRouteSettings.ThrottlingRateLimit)).toBeGreaterThan(0);
    }
    const set = stages(knobbed);
    expect(set.http.Properties.DefaultRouteSettings).toMatchObject({ ThrottlingBurstLimit: 11, ThrottlingRateLimit: 4.5 });
    expect(set.websocket.Properties.DefaultRouteSettings).toMatchObject({ ThrottlingBurstLimit: 7, ThrottlingRateLimit: 3 });
  });

  it("log every request as a line of JSON into a log group of the stack, and WebSocket errors without the frames", () => {
    for (const s of Object.values(stages(defaults))) {
      const { DestinationArn, Format } = s.Properties.AccessLogSettings;
      const group = ofType(defaults, "AWS::Logs::LogGroup").find(([id]) => text(DestinationArn).includes(id) || target(DestinationArn) === id);
      expect(group).toBeDefined();
      // $context.error.messageString is a quoted JSON string of its own.
      const line = JSON.parse(String(Format).replaceAll("$context.error.messageString", '"x"'));
      expect(line).toMatchObject({ requestId: "$context.requestId", ip: "$context.identity.sourceIp", status: "$context.status" });
    }
    expect(stages(defaults).websocket.Properties.DefaultRouteSettings).toMatchObject({ LoggingLevel: "ERROR", DataTraceEnabled: false });
  });

  it("set API Gateway's account role for WebSocket logging before the stage, unless the stage says the account has one", () => {
    const account = defaults.Resources.ApiGatewayAccount;
    expect(account?.Type).toBe("AWS::ApiGateway::Account");
    expect(target(account?.Properties.CloudWatchRoleArn)).toBe("ApiGatewayCloudWatchRole");
    expect(list(stages(defaults).websocket.DependsOn ?? [])).toContain("ApiGatewayAccount");
    expect(knobbed.Resources.ApiGatewayAccount).toBeUndefined();
    expect(knobbed.Resources.ApiGatewayCloudWatchRole).toBeUndefined();
    // Not osls's custom resource: a function allowed to create roles and attach any policy.
    for (const t of [defaults, knobbed]) expect(Object.values(t.Resources).map((r) => r.Type)).not.toContain("Custom::ApiGatewayAccountRole");
  });
});

describe("files bucket", () => {
  // Besides osls's own deployment bucket, which holds the artifacts.
  const bucket = (t: Template) => ofType(t, "AWS::S3::Bucket").filter(([id]) => id !== "ServerlessDeploymentBucket");

  it("is the stack's only bucket, private, encrypted, TLS only, aborting abandoned multipart uploads, kept unless the stage says Delete", () => {
    const [[id, files] = []] = bucket(defaults);
    expect(bucket(defaults)).toHaveLength(1);
    expect(files?.Properties).toMatchObject({
      BucketName: `${prefix}-files`,
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
      LifecycleConfiguration: { Rules: [{ Status: "Enabled", AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }] },
    });
    expect(files?.DeletionPolicy).toBe("Retain");
    expect(bucket(knobbed)[0]?.[1].DeletionPolicy).toBe("Delete");
    const policy = ofType(defaults, "AWS::S3::BucketPolicy").find(([, p]) => target(p.Properties.Bucket) === id)?.[1];
    expect(policy?.Properties.PolicyDocument.Statement).toEqual([expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })]);
  });

  it("is reached by the files function and by batch control (a batch's input and output files), on its objects, and listed only to tell a missing object (404) from a refused one", () => {
    const s3 = functionRoles(defaults).flatMap(([id, , role]) =>
      statementsOf(role!).filter((s) => list(s.Action).some((a) => a.startsWith("s3:"))).map((s) => [id, list(s.Action).sort(), list(s.Resource as unknown).map(text)] as const),
    );
    expect(s3.toSorted((a, b) => a[0].localeCompare(b[0]))).toEqual([
      ["BatchControlLambdaFunction", ["s3:GetObject", "s3:PutObject"], [`arn:{AWS::Partition}:s3:::${prefix}-files/*`]],
      ["BatchControlLambdaFunction", ["s3:ListBucket"], [`arn:{AWS::Partition}:s3:::${prefix}-files`]],
      ["FilesLambdaFunction", ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], [`arn:{AWS::Partition}:s3:::${prefix}-files/*`]],
      ["FilesLambdaFunction", ["s3:ListBucket"], [`arn:{AWS::Partition}:s3:::${prefix}-files`]],
    ]);
  });
});

describe("outputs", () => {
  it("give clients and ops every URL and name: the APIs, each queue, each table, the prefix", () => {
    const outputs = defaults.Outputs;
    expect(text(outputs.HttpApiUrl?.Value)).toMatch(/^https:\/\/\{HttpApi\}\.execute-api\./);
    expect(text(outputs.ServiceEndpointWebsocket?.Value)).toMatch(new RegExp(`^wss://\\{WebsocketsApi\\}\\.execute-api\\..*/${stage}$`));
    expect(text(outputs.WebsocketManagementEndpoint?.Value)).toMatch(new RegExp(`^https://\\{WebsocketsApi\\}\\.execute-api\\..*/${stage}$`));
    expect(outputs.ResourcePrefix?.Value).toBe(prefix);
    expect(outputs.Stage?.Value).toBe(stage);
    const refs = new Set(Object.values(outputs).map((o) => target(o.Value)));
    for (const [id] of [...ofType(defaults, "AWS::SQS::Queue"), ...ofType(defaults, "AWS::DynamoDB::Table")]) expect(refs, id).toContain(id);
  });
});

describe("functions", () => {
  it("each run with a role of their own", () => {
    const roles = functionRoles(defaults);
    expect(roles.length).toBeGreaterThan(0);
    expect(new Set(roles.map(([, fn]) => target(fn.Properties.Role))).size).toBe(roles.length);
    for (const [id, , role] of roles) expect(role?.Type, id).toBe("AWS::IAM::Role");
    expect(defaults.Resources.IamRoleLambdaExecution).toBeUndefined();
  });

  it("keep their logs and the APIs' for the stage's retention", () => {
    for (const [t, days] of [[defaults, 30], [knobbed, 90]] as const) {
      const groups = ofType(t, "AWS::Logs::LogGroup").map(([, g]) => g.Properties);
      for (const [id, fn] of ofType(t, "AWS::Lambda::Function")) {
        expect(groups.map((g) => g.LogGroupName), id).toContain(`/aws/lambda/${fn.Properties.FunctionName}`);
      }
      expect(groups.map((g) => g.LogGroupName)).toEqual(expect.arrayContaining([`/aws/http-api/${prefix}`, `/aws/websocket/${prefix}`]));
      for (const g of groups) expect(Number(g.RetentionInDays), g.LogGroupName).toBe(days);
    }
  });

  it("are traced by X-Ray only when the stage turns tracing on, and may then send segments", () => {
    const xray = (role: Resource) => statementsOf(role).filter((s) => list(s.Action).some((a) => a.startsWith("xray:")));
    for (const [id, fn, role] of functionRoles(defaults)) {
      expect(fn.Properties.TracingConfig, id).toBeUndefined();
      expect(xray(role!), id).toEqual([]);
    }
    for (const [id, fn, role] of functionRoles(knobbed)) {
      expect(fn.Properties.TracingConfig, id).toEqual({ Mode: "Active" });
      expect(xray(role!), id).toEqual([{ Effect: "Allow", Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], Resource: ["*"] }]);
    }
  });
});

describe("IAM", () => {
  const roles = (t: Template) => ofType(t, "AWS::IAM::Role");

  /**
   * Actions with no resource type, which AWS grants on "*" only (the Service Authorization
   * Reference lists no resource for them): X-Ray's segments (the functions, when traced), ECR's
   * token and CloudWatch's metrics (the SageMaker endpoint's execution role puts them, the
   * metrics function gets them).
   */
  const starOnly = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "cloudwatch:GetMetricData"];

  it("allows no wildcard action, and a bare * resource only to actions that AWS grants on * alone", () => {
    for (const t of [defaults, knobbed]) {
      for (const [id, role] of roles(t)) {
        for (const s of statementsOf(role)) {
          expect(s.Effect, id).toBe("Allow");
          for (const action of list(s.Action)) expect(action, id).not.toContain("*");
          const resources = list(s.Resource as unknown).map(text);
          if (resources.includes("*")) {
            expect(starOnly, id).toEqual(expect.arrayContaining(list(s.Action)));
            continue;
          }
          for (const resource of resources) {
            expect(resource, `${id}: ${list(s.Action).join(",")}`).not.toBe("*");
            expect(resource, id).not.toMatch(/^arn:\{AWS::Partition\}:[a-z-]+:\{AWS::Region\}:\{AWS::AccountId\}:\*$/);
          }
        }
      }
    }
  });

  it("lets a function write only to its own log group and post only to the stage's connections", () => {
    for (const [id, fn, role] of functionRoles(defaults)) {
      const resources = statementsOf(role!).flatMap((s) => list(s.Action).map((a) => [a, list(s.Resource as unknown).map(text)] as const));
      const logs = resources.filter(([a]) => a.startsWith("logs:"));
      expect(logs.map(([a]) => a).sort(), id).toEqual(["logs:CreateLogStream", "logs:PutLogEvents"]);
      for (const [, r] of logs) expect(r, id).toEqual([`arn:{AWS::Partition}:logs:{AWS::Region}:{AWS::AccountId}:log-group:/aws/lambda/${fn.Properties.FunctionName}:*`]);
      for (const [, r] of resources.filter(([a]) => a === "execute-api:ManageConnections")) {
        expect(r, id).toEqual([`arn:{AWS::Partition}:execute-api:{AWS::Region}:{AWS::AccountId}:{WebsocketsApi}/${stage}/POST/@connections/*`]);
      }
    }
  });

  it("lets the functions that cancel jobs only put cancel marks in the capacity ledger, which only the batcher reads (and metrics, the stored profile drift)", () => {
    const capacityTable = `arn:{AWS::Partition}:dynamodb:{AWS::Region}:{AWS::AccountId}:table/${prefix}-capacity`;
    const capacityActions = Object.fromEntries(
      roles(defaults).map(([id, role]) => [id, statementsOf(role).filter((s) => list(s.Resource as unknown).map(text).includes(capacityTable)).flatMap((s) => list(s.Action)).sort()]),
    );
    expect(Object.fromEntries(Object.entries(capacityActions).filter(([, actions]) => actions.length > 0))).toEqual({
      JobsRole: ["dynamodb:PutItem"],
      BatchesRole: ["dynamodb:PutItem"],
      WsMessageRole: ["dynamodb:PutItem"],
      // Ingest cancels jobs of a batch cancelled while it stored them; the sweep ends an expired batch's.
      BatchControlRole: ["dynamodb:PutItem"],
      BatchSweepRole: ["dynamodb:PutItem"],
      BatcherRole: ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"],
      MetricsRole: ["dynamodb:GetItem"],
    });
  });

  it("lets the metrics function query only the finished-jobs index, read the components' stored drift, describe the components, and read CloudWatch", () => {
    const role = functionRoles(defaults).find(([id]) => id === "MetricsLambdaFunction")?.[2];
    const grants = statementsOf(role!).map((s) => [list(s.Action).sort(), list(s.Resource as unknown).map(text)] as const);
    const jobsTable = `arn:{AWS::Partition}:dynamodb:{AWS::Region}:{AWS::AccountId}:table/${prefix}-jobs`;
    expect(grants.filter(([actions]) => actions.some((a) => a.startsWith("dynamodb:")))).toEqual([
      [["dynamodb:GetItem"], [`arn:{AWS::Partition}:dynamodb:{AWS::Region}:{AWS::AccountId}:table/${prefix}-api-keys`]],
      [["dynamodb:GetItem"], [`arn:{AWS::Partition}:dynamodb:{AWS::Region}:{AWS::AccountId}:table/${prefix}-capacity`]],
      [["dynamodb:Query"], [`${jobsTable}/index/route-finished-index`]],
    ]);
    expect(grants.filter(([actions]) => actions.some((a) => a.startsWith("cloudwatch:")))).toEqual([[["cloudwatch:GetMetricData"], ["*"]]]);
    const describe = grants.filter(([actions]) => actions.some((a) => a.startsWith("sagemaker:")));
    expect(describe.map(([actions]) => actions)).toEqual([["sagemaker:DescribeInferenceComponent"]]);
    expect(describe[0]?.[1].every((arn) => arn.includes(":inference-component/"))).toBe(true);
  });

  it("lets the route settings function read only the jobs table's model index, for predictions and trace exports", () => {
    const role = roles(defaults).find(([id]) => id === "RouteSettingsRole")?.[1] as Resource;
    const jobsStatements = statementsOf(role).filter((s) => list(s.Resource as unknown).map(text).some((r) => r.includes(`:table/${prefix}-jobs`)));
    expect(jobsStatements.flatMap((s) => list(s.Action))).toEqual(["dynamodb:Query"]);
    expect(jobsStatements.flatMap((s) => list(s.Resource as unknown).map(text)).filter((r) => r.includes("/index/"))).toEqual([
      `arn:{AWS::Partition}:dynamodb:{AWS::Region}:{AWS::AccountId}:table/${prefix}-jobs/index/model-index`,
    ]);
  });

  it("names DynamoDB indexes one by one, only for functions that query", () => {
    for (const [id, role] of roles(defaults)) {
      for (const s of statementsOf(role).filter((s) => list(s.Action).some((a) => a.startsWith("dynamodb:")))) {
        const indexes = list(s.Resource as unknown).map(text).filter((r) => r.includes("/index/"));
        for (const index of indexes) expect(index, id).toMatch(/\/index\/[a-z-]+$/);
        if (!list(s.Action).includes("dynamodb:Query")) expect(indexes, id).toEqual([]);
      }
    }
  });
});

describe("the API Gateway settings generator", () => {
  const { apiGatewayResources } = createRequire(import.meta.url)("../../infra/api-gateway.cjs") as {
    apiGatewayResources: (options: { api: unknown; websocketLogs?: unknown; stage: string }) => unknown;
  };
  const api = {
    http: { throttlingBurstLimit: 10, throttlingRateLimit: 5 },
    websocket: { throttlingBurstLimit: 10, throttlingRateLimit: 5 },
    cloudWatchRole: "stack",
  };

  it("takes limits given as text, as --param gives them", () => {
    const out = apiGatewayResources({ api: { ...api, http: { throttlingBurstLimit: "20", throttlingRateLimit: "2.5" } }, stage: "s" }) as any;
    expect(out.extensions.HttpApiStage.Properties.DefaultRouteSettings).toEqual({ DetailedMetricsEnabled: false, ThrottlingBurstLimit: 20, ThrottlingRateLimit: 2.5 });
  });

  it.each([
    ["a burst that is not a whole number", { ...api, http: { ...api.http, throttlingBurstLimit: 1.5 } }, /http.throttlingBurstLimit/],
    ["a rate of zero", { ...api, websocket: { ...api.websocket, throttlingRateLimit: "0" } }, /websocket.throttlingRateLimit/],
    ["a missing limit", { ...api, http: {} }, /http.throttlingBurstLimit/],
    ["an unknown role mode", { ...api, cloudWatchRole: "maybe" }, /cloudWatchRole/],
  ])("refuses %s", (_, bad, message) => {
    expect(() => apiGatewayResources({ api: bad, stage: "s" })).toThrow(message);
  });
});

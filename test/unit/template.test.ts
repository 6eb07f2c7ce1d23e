import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { MAX_DELIVERY_ATTEMPTS } from "#shared/core/webhooks";
import { DEFAULT_MAXIMUM_CONCURRENCY } from "#local/event-source-mapping";
import { LOCAL_SQS_SOCKETS } from "#local/sqs";
import { type LocalResources, TemplateError, packageTemplate, parseTemplate, withoutBundling } from "#local/template";

const projectDir = process.cwd();
const stage = "tpl";
const prefix = `batchline-${stage}`;

describe("parseTemplate on the template `osls package` generates", () => {
  const catalog = loadRouteCatalog(join(projectDir, "infra", "routes.yml"));
  let resources: LocalResources;

  beforeAll(async () => {
    resources = parseTemplate(await packageTemplate({ projectDir, stage }));
  });

  // The batch lane keeps the route's queue name from before lanes; the interactive lane's is new.
  const laneQueues = (route: string) => [`${prefix}-${route}-interactive`, `${prefix}-${route}`];

  it("has a queue and a dead-letter queue per lane of each route, each redriven to its own DLQ after the route's max_receive_count", () => {
    for (const route of catalog.routes.values()) {
      for (const name of laneQueues(route.name)) {
        const queue = resources.queues.find((q) => q.name === name);
        expect(queue?.redrive, name).toEqual({ deadLetterQueue: `${name}-dlq`, maxReceiveCount: route.max_receive_count });
        expect(Number(queue?.attributes.VisibilityTimeout)).toBeGreaterThan(0);
        // SSE is AWS's: fauxqs takes no SqsManagedSseEnabled.
        expect(Object.keys(queue?.attributes ?? {})).not.toContain("SqsManagedSseEnabled");
        expect(resources.queues.map((q) => q.name)).toContain(`${name}-dlq`);
      }
    }
    // And the batch-control queue and the webhooks queue, each with its DLQ.
    expect(resources.queues).toHaveLength(catalog.routes.size * 4 + 4);
  });

  it("has the batch-control queue, redriven to its DLQ, polled one message at a time by batchControl, and the sweep's minute schedule", () => {
    const queue = resources.queues.find((q) => q.name === `${prefix}-batch-control`);
    expect(queue?.redrive).toEqual({ deadLetterQueue: `${prefix}-batch-control-dlq`, maxReceiveCount: 5 });
    expect(resources.mappings.find((m) => m.queueName === `${prefix}-batch-control`)).toMatchObject({ functionName: `${prefix}-batchControl`, batchSize: 1, reportBatchItemFailures: true });
    expect(resources.schedules).toEqual([expect.objectContaining({ functionName: `${prefix}-batchSweep`, expression: "rate(1 minute)", periodMs: 60_000 })]);
  });

  it("has the webhooks queue, redriven to its DLQ after every attempt but the first (that one is the event's message)", () => {
    const webhooks = resources.queues.find((q) => q.name === `${prefix}-webhooks`);
    expect(webhooks?.redrive).toEqual({ deadLetterQueue: `${prefix}-webhooks-dlq`, maxReceiveCount: MAX_DELIVERY_ATTEMPTS - 1 });
    expect(resources.mappings.find((m) => m.queueName === `${prefix}-webhooks`)).toMatchObject({ functionName: `${prefix}-webhookDelivery`, batchSize: 10, reportBatchItemFailures: true });
    // Nothing reads its DLQ: ops redrive what is there.
    expect(resources.mappings.find((m) => m.queueName === `${prefix}-webhooks-dlq`)).toBeUndefined();
    expect(resources.tables.find((t) => t.TableName === `${prefix}-webhook-endpoints`)?.KeySchema).toEqual([
      { AttributeName: "tenant", KeyType: "HASH" },
      { AttributeName: "slot", KeyType: "RANGE" },
    ]);
  });

  it("leaves the stack's SQS client a socket for every poller's long poll, with room for the stack's own calls", () => {
    const pollers = resources.mappings.reduce((sum, m) => sum + (m.maximumConcurrency ?? DEFAULT_MAXIMUM_CONCURRENCY), 0);
    expect(pollers).toBeGreaterThan(50);
    expect(LOCAL_SQS_SOCKETS).toBeGreaterThanOrEqual(2 * pollers);
  });

  it("gives each function's memory, the provider's 512 MB where it names none: what its GB-seconds cost", () => {
    expect(resources.functionMemoryMb[`${prefix}-jobs`]).toBe(512);
    expect(resources.functionMemoryMb[`${prefix}-batcher`]).toBe(1024);
    expect(resources.functionMemoryMb[`${prefix}-batchControl`]).toBe(2048);
    expect(parseTemplate({ Resources: { F: { Type: "AWS::Lambda::Function", Properties: { FunctionName: "f" } } } }).functionMemoryMb).toEqual({ f: 128 });
  });

  it("has the files bucket by name, and not osls's own deployment bucket, which has none of ours", () => {
    expect(resources.buckets).toEqual([`${prefix}-files`]);
  });

  it("gives both lanes of a route the same visibility timeout: a lane's batcher runs as long as the other's", () => {
    for (const route of catalog.routes.values()) {
      const [interactive, batch] = laneQueues(route.name).map((name) => resources.queues.find((q) => q.name === name)?.attributes.VisibilityTimeout);
      expect(interactive).toBeDefined();
      expect(interactive).toBe(batch);
    }
  });

  it("keeps the tables' keys, indexes and billing mode and drops what dynalite lacks", () => {
    const jobs = resources.tables.find((t) => t.TableName === `${prefix}-jobs`);
    expect(jobs?.KeySchema).toEqual([{ AttributeName: "job_id", KeyType: "HASH" }]);
    expect(jobs?.GlobalSecondaryIndexes?.map((i) => i.IndexName)).toEqual(["batch-index", "route-finished-index", "model-index"]);
    expect(jobs?.BillingMode).toBe("PAY_PER_REQUEST");
    for (const table of resources.tables) {
      expect(table.TableName.startsWith(`${prefix}-`)).toBe(true);
      expect(Object.keys(table).sort()).toEqual(
        expect.not.arrayContaining(["TimeToLiveSpecification", "StreamSpecification", "PointInTimeRecoverySpecification", "SSESpecification"]),
      );
    }
    expect(resources.tables.map((t) => t.TableName)).toContain(`${prefix}-api-keys`);
  });

  it("keeps each table's TTL attribute for the retention sweeper", () => {
    expect(resources.ttl).toContainEqual({ tableName: `${prefix}-jobs`, attribute: "expires_at" });
    expect(resources.ttl.map((t) => t.tableName)).not.toContain(`${prefix}-api-keys`);
  });

  it("maps each lane's queue to the batcher with the route's window settings, one mapping per lane", () => {
    for (const route of catalog.routes.values()) for (const name of laneQueues(route.name)) {
      const mapping = resources.mappings.find((m) => m.queueName === name);
      expect(mapping, name).toMatchObject({
        functionName: `${prefix}-batcher`,
        batchSize: route.window.batch_size,
        maximumBatchingWindowSeconds: route.window.batching_window_seconds,
        maximumConcurrency: route.window.maximum_concurrency,
        reportBatchItemFailures: true,
        enabled: true,
      });
    }
  });

  it("maps each lane's dead-letter queue to the dead-letter function with AWS's defaults", () => {
    for (const route of catalog.routes.values()) for (const name of laneQueues(route.name)) {
      const mapping = resources.mappings.find((m) => m.queueName === `${name}-dlq`);
      expect(mapping, name).toMatchObject({
        functionName: `${prefix}-deadLetter`,
        maximumBatchingWindowSeconds: 0,
        maximumConcurrency: undefined,
        reportBatchItemFailures: true,
      });
    }
  });
});

describe("parseTemplate", () => {
  const queue = (name: string, extra: Record<string, unknown> = {}) => ({
    Type: "AWS::SQS::Queue",
    Properties: { QueueName: name, ...extra },
  });
  const fn = { Type: "AWS::Lambda::Function", Properties: { FunctionName: "svc-dev-worker" } };
  const mapping = (properties: Record<string, unknown>) => ({ Type: "AWS::Lambda::EventSourceMapping", Properties: properties });

  it("takes a RedrivePolicy given as JSON text with a literal ARN", () => {
    const policy = JSON.stringify({ deadLetterTargetArn: "arn:aws:sqs:eu-west-1:123456789012:dead", maxReceiveCount: "3" });
    const { queues } = parseTemplate({ Resources: { Q: queue("q", { RedrivePolicy: policy, DelaySeconds: 5, KmsMasterKeyId: "k" }) } });
    expect(queues).toEqual([{ logicalId: "Q", name: "q", attributes: { DelaySeconds: "5" }, redrive: { deadLetterQueue: "dead", maxReceiveCount: 3 } }]);
  });

  it("applies the CloudFormation defaults of a mapping and resolves Ref and literal function names", () => {
    const { mappings } = parseTemplate({
      Resources: {
        Q: queue("q"),
        Worker: fn,
        ByRef: mapping({ EventSourceArn: { "Fn::GetAtt": ["Q", "Arn"] }, FunctionName: { Ref: "Worker" } }),
        ByName: mapping({ EventSourceArn: "arn:aws:sqs:us-east-1:000000000000:q", FunctionName: "other", Enabled: false }),
      },
    });
    expect(mappings).toEqual([
      expect.objectContaining({ logicalId: "ByRef", functionName: "svc-dev-worker", batchSize: 10, maximumBatchingWindowSeconds: 0, reportBatchItemFailures: false, enabled: true }),
      expect.objectContaining({ logicalId: "ByName", queueName: "q", functionName: "other", enabled: false }),
    ]);
  });

  it("leaves out mappings of sources other than SQS", () => {
    const table = { Type: "AWS::DynamoDB::Table", Properties: { TableName: "t", AttributeDefinitions: [], KeySchema: [] } };
    const stream = mapping({ EventSourceArn: { "Fn::GetAtt": ["T", "StreamArn"] }, FunctionName: { "Fn::GetAtt": ["Worker", "Arn"] } });
    expect(parseTemplate({ Resources: { T: table, Worker: fn, S: stream } }).mappings).toEqual([]);
  });

  it.each([
    ["a queue without a name", { Q: { Type: "AWS::SQS::Queue", Properties: {} } }, /Q: .*QueueName/s],
    ["a redrive to a queue not in the template", { Q: queue("q", { RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": ["Nope", "Arn"] }, maxReceiveCount: 2 } }) }, /Nope/],
    ["a redrive policy that is not JSON", { Q: queue("q", { RedrivePolicy: "{" }) }, /Q.RedrivePolicy is not JSON/],
    ["a table key type that does not exist", { T: { Type: "AWS::DynamoDB::Table", Properties: { TableName: "t", AttributeDefinitions: [], KeySchema: [{ AttributeName: "a", KeyType: "SORT" }] } } }, /T: /],
  ])("rejects %s", (_, resources, message) => {
    expect(() => parseTemplate({ Resources: resources })).toThrow(TemplateError);
    expect(() => parseTemplate({ Resources: resources })).toThrow(message);
  });

  it("rejects what is not a template", () => {
    expect(() => parseTemplate({ AWSTemplateFormatVersion: "2010-09-09" })).toThrow(TemplateError);
  });
});

describe("withoutBundling", () => {
  it("drops serverless-esbuild, keeps the other plugins and gives every function the artifact", () => {
    const yml = "service: s\nplugins:\n  - serverless-esbuild\n  - serverless-offline\npackage:\n  individually: true\nresources: ${file(x.yml)}\n";
    expect(parseYaml(withoutBundling(yml, "/tmp/a.zip"))).toEqual({
      service: "s",
      plugins: ["serverless-offline"],
      package: { artifact: "/tmp/a.zip" },
      resources: "${file(x.yml)}",
    });
  });
});

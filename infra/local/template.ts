import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CreateTableCommandInput } from "@aws-sdk/client-dynamodb";
import { isScalar, isSeq, parseDocument } from "yaml";
import { z } from "zod";
import { oslsCommand, oslsEnv, scratchService } from "./osls.ts";
import { rateMs } from "./scheduler.ts";

/**
 * The resources the embedded stack recreates, read from the CloudFormation template that
 * `osls package` generates: the same definitions that deploy to AWS.
 */
export type LocalResources = {
  readonly queues: readonly QueueDefinition[];
  readonly tables: readonly TableDefinition[];
  readonly mappings: readonly EventSourceMappingDefinition[];
  /** Tables with a TimeToLiveSpecification: dynalite has no TTL, so the stack sweeps them. */
  readonly ttl: readonly TimeToLiveDefinition[];
  /** S3 buckets by name (fauxqs serves S3; encryption, access blocks and lifecycle it has not). */
  readonly buckets: readonly string[];
  /** EventBridge rules with a rate schedule and a Lambda target: the stack's scheduler runs them. */
  readonly schedules: readonly ScheduleDefinition[];
  /** Each function's MemorySize by deployed name (Lambda's default 128 where the template has none): what its GB-seconds cost. */
  readonly functionMemoryMb: Readonly<Record<string, number>>;
};

export type ScheduleDefinition = {
  readonly logicalId: string;
  /** The deployed name of the target function. */
  readonly functionName: string;
  readonly expression: string;
  readonly periodMs: number;
};

export type TimeToLiveDefinition = { readonly tableName: string; readonly attribute: string };

export type QueueDefinition = {
  readonly logicalId: string;
  readonly name: string;
  /** CreateQueue attributes, all but the RedrivePolicy (it needs the emulator's ARN: `redrive`). */
  readonly attributes: Readonly<Record<string, string>>;
  readonly redrive?: { readonly deadLetterQueue: string; readonly maxReceiveCount: number };
};

/** CreateTable input reduced to what dynalite implements. */
export type TableDefinition = Pick<
  CreateTableCommandInput,
  "TableName" | "AttributeDefinitions" | "KeySchema" | "GlobalSecondaryIndexes" | "LocalSecondaryIndexes" | "BillingMode" | "ProvisionedThroughput"
> & { readonly TableName: string };

export type EventSourceMappingDefinition = {
  readonly logicalId: string;
  readonly queueName: string;
  /** The deployed name (`<service>-<stage>-<function>`), which serverless-offline's Lambda API takes. */
  readonly functionName: string;
  readonly batchSize: number;
  readonly maximumBatchingWindowSeconds: number;
  /** ScalingConfig.MaximumConcurrency; undefined when the template leaves it to AWS. */
  readonly maximumConcurrency: number | undefined;
  readonly reportBatchItemFailures: boolean;
  /** FunctionResponseTypes as the template has them, for the check of what AWS accepts there. */
  readonly functionResponseTypes?: readonly string[];
  readonly enabled: boolean;
};

export class TemplateError extends Error {
  override readonly name = "TemplateError";
}

const getAtt = z.object({ "Fn::GetAtt": z.tuple([z.string(), z.string()]) });
const ref = z.object({ Ref: z.string() });
const integer = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);

const resourceSchema = z.object({ Type: z.string(), Properties: z.record(z.string(), z.unknown()).default({}) });
const templateSchema = z.object({ Resources: z.record(z.string(), resourceSchema) });

const redrivePolicySchema = z.object({
  deadLetterTargetArn: z.union([getAtt, z.string()]),
  maxReceiveCount: integer,
});
const queueSchema = z.object({
  QueueName: z.string({ error: "every queue needs a QueueName locally" }),
  RedrivePolicy: z.unknown().optional(),
});
/** CloudFormation properties that are also CreateQueue attributes and mean something locally. */
const queueAttributeNames = [
  "DelaySeconds",
  "MaximumMessageSize",
  "MessageRetentionPeriod",
  "ReceiveMessageWaitTimeSeconds",
  "VisibilityTimeout",
  "FifoQueue",
  "ContentBasedDeduplication",
  "DeduplicationScope",
  "FifoThroughputLimit",
] as const;

const keySchema = z.array(z.object({ AttributeName: z.string(), KeyType: z.enum(["HASH", "RANGE"]) }));
const throughput = z.object({ ReadCapacityUnits: integer, WriteCapacityUnits: integer });
const projection = z.object({
  ProjectionType: z.enum(["ALL", "KEYS_ONLY", "INCLUDE"]),
  NonKeyAttributes: z.array(z.string()).optional(),
});
const index = z.object({ IndexName: z.string(), KeySchema: keySchema, Projection: projection });
// z.object drops the keys it does not name: that is how TTL, streams, PITR, SSE and tags go.
const tableSchema = z.object({
  TableName: z.string({ error: "every table needs a TableName locally" }),
  AttributeDefinitions: z.array(z.object({ AttributeName: z.string(), AttributeType: z.enum(["S", "N", "B"]) })),
  KeySchema: keySchema,
  GlobalSecondaryIndexes: z.array(index.extend({ ProvisionedThroughput: throughput.optional() })).optional(),
  LocalSecondaryIndexes: z.array(index).optional(),
  BillingMode: z.enum(["PROVISIONED", "PAY_PER_REQUEST"]).optional(),
  ProvisionedThroughput: throughput.optional(),
});

const bucketSchema = z.object({ BucketName: z.string().optional() });
const ruleSchema = z.object({
  ScheduleExpression: z.string().optional(),
  State: z.string().default("ENABLED"),
  Targets: z.array(z.object({ Arn: z.union([getAtt, z.string()]) })).default([]),
});

/** Lambda's default memory when a function names none. */
const functionSchema = z.object({ MemorySize: integer.default(128) });

const tableTtlSchema = z.object({
  TableName: z.string(),
  TimeToLiveSpecification: z.object({ AttributeName: z.string(), Enabled: z.boolean().default(true) }).optional(),
});

const mappingSchema = z.object({
  EventSourceArn: z.union([getAtt, z.string()]),
  FunctionName: z.union([getAtt, ref, z.string()]),
  BatchSize: integer.default(10),
  MaximumBatchingWindowInSeconds: integer.default(0),
  ScalingConfig: z.object({ MaximumConcurrency: integer.optional() }).optional(),
  FunctionResponseTypes: z.array(z.string()).default([]),
  Enabled: z.boolean().default(true),
});

function parseProperties<T extends z.ZodType>(schema: T, logicalId: string, properties: unknown): z.output<T> {
  const result = schema.safeParse(properties);
  if (!result.success) throw new TemplateError(`${logicalId}: ${z.prettifyError(result.error)}`);
  return result.data;
}

/** CloudFormation takes some policies as an object or as its JSON text. */
function fromJsonText(value: unknown, what: string): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    throw new TemplateError(`${what} is not JSON: ${value.slice(0, 100)}`);
  }
}

/** The last part of an ARN: a queue's or function's name. */
const nameInArn = (arn: string) => arn.slice(arn.lastIndexOf(":") + 1);

/**
 * Reads queues, tables, buckets and SQS event source mappings out of a CloudFormation template, resolving
 * the intrinsic functions that serverless generates for them (`Fn::GetAtt [X, Arn]`, `Ref`).
 * Properties the emulators lack (TTL, streams, encryption, tags...) are left out.
 */
export function parseTemplate(template: unknown): LocalResources {
  const parsed = templateSchema.safeParse(template);
  if (!parsed.success) throw new TemplateError(`not a CloudFormation template: ${z.prettifyError(parsed.error)}`);
  const resources = Object.entries(parsed.data.Resources);
  const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);

  const queueNames = new Map(
    ofType("AWS::SQS::Queue").map(([id, r]) => [id, parseProperties(queueSchema, id, r.Properties).QueueName]),
  );
  // serverless-offline's Lambda API knows functions by their deployed name only.
  const functionNames = new Map(
    ofType("AWS::Lambda::Function").flatMap(([id, r]) => (typeof r.Properties.FunctionName === "string" ? [[id, r.Properties.FunctionName] as const] : [])),
  );
  const resolveName = (names: Map<string, string>, value: z.infer<typeof getAtt> | z.infer<typeof ref> | string, what: string) => {
    if (typeof value === "string") return nameInArn(value);
    const id = "Ref" in value ? value.Ref : value["Fn::GetAtt"][0];
    const name = names.get(id);
    if (name === undefined) throw new TemplateError(`${what} refers to ${id}, which is not in the template`);
    return name;
  };

  const queues = ofType("AWS::SQS::Queue").map(([logicalId, r]): QueueDefinition => {
    const { QueueName, RedrivePolicy } = parseProperties(queueSchema, logicalId, r.Properties);
    const attributes = Object.fromEntries(
      queueAttributeNames.filter((name) => r.Properties[name] !== undefined).map((name) => [name, String(r.Properties[name])]),
    );
    if (RedrivePolicy === undefined) return { logicalId, name: QueueName, attributes };
    const policy = parseProperties(redrivePolicySchema, `${logicalId}.RedrivePolicy`, fromJsonText(RedrivePolicy, `${logicalId}.RedrivePolicy`));
    const deadLetterQueue = resolveName(queueNames, policy.deadLetterTargetArn, `${logicalId}.RedrivePolicy`);
    return { logicalId, name: QueueName, attributes, redrive: { deadLetterQueue, maxReceiveCount: policy.maxReceiveCount } };
  });

  const tables = ofType("AWS::DynamoDB::Table").map(([logicalId, r]): TableDefinition =>
    parseProperties(tableSchema, logicalId, r.Properties),
  );
  const ttl = ofType("AWS::DynamoDB::Table").flatMap(([logicalId, r]): TimeToLiveDefinition[] => {
    const { TableName, TimeToLiveSpecification: spec } = parseProperties(tableTtlSchema, logicalId, r.Properties);
    return spec?.Enabled ? [{ tableName: TableName, attribute: spec.AttributeName }] : [];
  });

  const mappings = ofType("AWS::Lambda::EventSourceMapping").flatMap(([logicalId, r]): EventSourceMappingDefinition[] => {
    const m = parseProperties(mappingSchema, logicalId, r.Properties);
    // Only SQS sources: a stream mapping has nothing to read from in dynalite.
    const source = m.EventSourceArn;
    const fromQueue = typeof source === "string" ? source.startsWith("arn:aws:sqs:") : queueNames.has(source["Fn::GetAtt"][0]);
    if (!fromQueue) return [];
    return [
      {
        logicalId,
        queueName: resolveName(queueNames, source, `${logicalId}.EventSourceArn`),
        functionName: resolveName(functionNames, m.FunctionName, `${logicalId}.FunctionName`),
        batchSize: m.BatchSize,
        maximumBatchingWindowSeconds: m.MaximumBatchingWindowInSeconds,
        maximumConcurrency: m.ScalingConfig?.MaximumConcurrency,
        reportBatchItemFailures: m.FunctionResponseTypes.includes("ReportBatchItemFailures"),
        functionResponseTypes: m.FunctionResponseTypes,
        enabled: m.Enabled,
      },
    ];
  });

  // Buckets the functions name; osls's deployment bucket has no name of ours and is not used locally.
  const buckets = ofType("AWS::S3::Bucket").flatMap(([logicalId, r]) => parseProperties(bucketSchema, logicalId, r.Properties).BucketName ?? []);

  const schedules = ofType("AWS::Events::Rule").flatMap(([logicalId, r]): ScheduleDefinition[] => {
    const rule = parseProperties(ruleSchema, logicalId, r.Properties);
    const periodMs = rule.ScheduleExpression === undefined ? undefined : rateMs(rule.ScheduleExpression);
    if (rule.ScheduleExpression === undefined || periodMs === undefined || rule.State !== "ENABLED") return [];
    const expression = rule.ScheduleExpression;
    return rule.Targets.map((t) => ({ logicalId, functionName: resolveName(functionNames, t.Arn, `${logicalId}.Targets`), expression, periodMs }));
  });

  const functionMemoryMb = Object.fromEntries(
    ofType("AWS::Lambda::Function").flatMap(([id, r]) => {
      const name = functionNames.get(id);
      return name === undefined ? [] : [[name, parseProperties(functionSchema, id, r.Properties).MemorySize] as const];
    }),
  );

  return { queues, tables, mappings, ttl, buckets, schedules, functionMemoryMb };
}

export type PackageOptions = {
  readonly projectDir: string;
  readonly stage: string;
  /** serverless.yml's `${param:...}` values, as `osls package --param name=value` gives them. */
  readonly params?: Readonly<Record<string, string>>;
};

/**
 * Runs `osls package` and returns the parsed `cloudformation-template-update-stack.json`.
 *
 * It runs in a scratch copy of the project whose serverless.yml drops serverless-esbuild and
 * hands osls a prebuilt, empty artifact instead: the bundles change no queue, table or mapping
 * but cost most of the time (9 of 12 s here).
 */
export async function packageTemplate({ projectDir, stage, params = {} }: PackageOptions): Promise<unknown> {
  const out = await mkdtemp(join(tmpdir(), "batchline-package-"));
  const artifact = join(out, "empty.zip");
  const service = await scratchService(projectDir, (config) => withoutBundling(config, artifact));
  try {
    await writeFile(artifact, EMPTY_ZIP);
    const paramArgs = Object.entries(params).map(([name, value]) => `--param=${name}=${value}`);
    const { command, args } = oslsCommand(["package", "--stage", stage, "--package", join(out, "package"), ...paramArgs]);
    await run(command, args, service.dir);
    return JSON.parse(await readFile(join(out, "package", "cloudformation-template-update-stack.json"), "utf8"));
  } finally {
    await Promise.all([service.remove(), rm(out, { recursive: true, force: true })]);
  }
}

/** A zip with no entries: just the end-of-central-directory record. */
const EMPTY_ZIP = Buffer.concat([Buffer.from("PK\x05\x06", "latin1"), Buffer.alloc(18)]);

/** serverless.yml without the bundler: every function gets `artifact` as its code. */
export function withoutBundling(serverlessYml: string, artifact: string): string {
  const doc = parseDocument(serverlessYml);
  const plugins = doc.get("plugins");
  if (isSeq(plugins)) plugins.items = plugins.items.filter((item) => !(isScalar(item) && item.value === "serverless-esbuild"));
  doc.set("package", { artifact });
  return doc.toString();
}

function run(command: string, args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: oslsEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk: Buffer) => (output += chunk.toString("utf8"));
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`osls ${args.slice(1).join(" ")} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

import { join, resolve } from "node:path";
import { loadRouteCatalog } from "#shared/config";
import pLimit, { type LimitFunction } from "p-limit";
import { type LocalAutoscaler, startLocalAutoscaler } from "./autoscaler.ts";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "./aws.ts";
import { registerDevApiKey, resolveDevApiKey } from "./dev-key.ts";
import { localDynamoDbClient, startLocalDynamoDb, type LocalDynamoDb } from "./dynamodb.ts";
import { assertMappingAccepted, type Invoker, type RunningEventSourceMapping, startEventSourceMapping } from "./event-source-mapping.ts";
import { lambdaInvoker } from "./lambda-invoker.ts";
import { type Logger, silentLogger } from "./log.ts";
import { type RunningOffline, startOffline } from "./offline.ts";
import { freePort } from "./ports.ts";
import { type ProvisionedQueue, provisionQueues, provisionTables } from "./provision.ts";
import { type SageMakerEmulator, startSageMakerEmulator } from "./sagemaker/server.ts";
import { type RunningSweeper, startTtlSweeper } from "./ttl-sweeper.ts";
import { type LocalSqs, localSqsClient, startLocalSqs } from "./sqs.ts";
import { type EventSourceMappingDefinition, packageTemplate, parseTemplate, type QueueDefinition } from "./template.ts";

export type StackPorts = {
  readonly sqs: number;
  readonly dynamodb: number;
  readonly sagemaker: number;
  readonly http: number;
  readonly websocket: number;
  readonly lambda: number;
};

export type StackOptions = {
  /** Where serverless.yml is; default the working directory. */
  readonly projectDir?: string;
  /** Default "local". Names every queue and table: `batchline-<stage>-...`. */
  readonly stage?: string;
  /** SQS under `<dataDir>/sqs`, DynamoDB under `<dataDir>/dynamodb`, the dev key file; undefined: all in memory. */
  readonly dataDir?: string | undefined;
  /** A missing or 0 port is a free one, picked at start. */
  readonly ports?: Partial<StackPorts>;
  /** The SageMaker emulator's simulated ms per wall ms; default 1. */
  readonly timeScale?: number;
  /**
   * Application Auto Scaling of the components that have an `autoscaling` block (the local
   * autoscaler beside the emulator); default true. false: every component keeps its `copies`, a
   * fixed fleet.
   */
  readonly autoscaling?: boolean;
  /**
   * How many times faster than AWS the scaling machinery runs, on the emulator's clock: CloudWatch
   * periods, alarms, cooldowns and copies' warm-ups are all divided by it (never one alone), so a
   * bench can run a day of traffic in minutes. Default 1.
   */
  readonly scalingTimeCompression?: number;
  /** The dev API key (BATCHLINE_API_KEY); default: kept in the data dir, or new. */
  readonly apiKey?: string | undefined;
  /** Start the SageMaker emulator; default true. */
  readonly sagemaker?: boolean;
  /** Start `osls offline` (HTTP, WebSocket and Lambda APIs); default true. */
  readonly offline?: boolean;
  /** Run the event source mappings; default: when offline runs or `invoke` is given. */
  readonly pollers?: boolean;
  /** What the pollers invoke; default serverless-offline's Lambda API. */
  readonly invoke?: Invoker;
  /** How often expired items are deleted (DynamoDB TTL's stand-in); default a minute. */
  readonly retentionSweepMs?: number | undefined;
  readonly log?: Logger;
  /** osls offline's output (handler logs included); default dropped. */
  readonly onOfflineOutput?: (chunk: string) => void;
  /**
   * Event source mapping settings that replace the template's, keyed by queue name, applied
   * before the pollers start (in AWS: UpdateEventSourceMapping). A `maximumConcurrency` given as
   * undefined means AWS's default scaling. A queue that has no mapping is an error.
   */
  readonly mappingOverrides?: MappingOverrides;
  /**
   * The routes file the SageMaker emulator and the functions read (BATCHLINE_ROUTES_FILE);
   * default `<projectDir>/infra/routes.yml`. Queues and mappings still come from the project's
   * own routes.yml through serverless.yml: a variant may change components (engine, copies,
   * limits), not routes.
   */
  readonly routesFile?: string;
  /**
   * Endpoints the functions get instead of the stack's own emulators (their AWS_ENDPOINT_URL_*),
   * e.g. a fault proxy in front of dynalite; the stack itself (provisioning, the dev key) still
   * talks to the emulators directly.
   */
  readonly functionEndpoints?: { readonly dynamodb?: string };
  /**
   * Queue attributes that replace the template's, keyed by queue name, applied when the queues
   * are provisioned (in AWS: the queue's properties in the template). For tests that cannot wait
   * for AWS's timings: a shorter VisibilityTimeout brings a dead batcher's messages back in
   * seconds instead of 900 s (keep it above the batcher's timeout, as AWS requires). A queue
   * that is not in the template is an error.
   */
  readonly queueAttributeOverrides?: QueueAttributeOverrides;
  /**
   * Reserved concurrency of functions, keyed by their name in serverless.yml (e.g. `batcher`):
   * at most this many of its invocations run at once, and the event source mappings' other
   * invocations wait for a turn, as AWS's pollers retry a throttled invocation with its batch.
   * (AWS takes a reserved concurrency of 1 where a mapping's MaximumConcurrency is at least 2.)
   */
  readonly reservedConcurrency?: Readonly<Record<string, number>>;
};

export type QueueAttributeOverrides = Readonly<Record<string, Readonly<Record<string, string>>>>;

export type MappingOverride = Partial<Pick<EventSourceMappingDefinition, "batchSize" | "maximumBatchingWindowSeconds" | "maximumConcurrency">>;
export type MappingOverrides = Readonly<Record<string, MappingOverride>>;

export type StackEndpoints = {
  readonly sqs: string;
  readonly dynamodb: string;
  readonly sagemaker: string | undefined;
  readonly http: string | undefined;
  /** ws:// URL clients connect to. */
  readonly websocket: string | undefined;
  /** http:// base of `/@connections` (PostToConnection). */
  readonly connections: string | undefined;
  readonly lambda: string | undefined;
};

export type Stack = {
  readonly stage: string;
  /** `batchline-<stage>`: the prefix of every queue and table. */
  readonly prefix: string;
  readonly endpoints: StackEndpoints;
  readonly apiKey: string;
  readonly queues: readonly ProvisionedQueue[];
  readonly tables: readonly string[];
  /** The event source mappings of the template, with whether pollers run them. */
  readonly mappings: readonly (EventSourceMappingDefinition & { readonly polling: boolean })[];
  /** The environment the functions get (endpoints, fake credentials, BATCHLINE_*). */
  readonly functionEnv: Readonly<Record<string, string>>;
  readonly sagemaker: SageMakerEmulator | undefined;
  /** Stops pollers (waiting for invocations in flight), then offline, then the emulators. */
  stop(): Promise<void>;
};

const HOST = "127.0.0.1";

/**
 * The embedded stack: fauxqs, dynalite, the SageMaker emulator, osls offline and the SQS event
 * source mappings, with queues and tables provisioned from the CloudFormation that `osls package`
 * generates. Starting again on the same dataDir keeps every queue, message, table and item.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const projectDir = options.projectDir ?? process.cwd();
  const stage = options.stage ?? "local";
  const prefix = `batchline-${stage}`;
  const log = options.log ?? silentLogger;
  const wantOffline = options.offline ?? true;
  const wantPollers = options.pollers ?? (wantOffline || options.invoke !== undefined);
  if (wantPollers && !wantOffline && options.invoke === undefined) {
    throw new Error("pollers need something to invoke: start offline or pass `invoke`");
  }
  const dataPath = (name: string) => (options.dataDir === undefined ? undefined : join(options.dataDir, name));

  const routesFile = options.routesFile === undefined ? join(projectDir, "infra", "routes.yml") : resolve(options.routesFile);
  const parts: Parts = { mappings: [] };
  const stop = () => stopParts(parts, log);
  let offlineStarting: Promise<RunningOffline> | undefined;
  let template: Promise<unknown> | undefined;
  try {
    // osls takes seconds just to start: it packages while the emulators come up.
    template = packageTemplate({ projectDir, stage });
    template.catch(() => undefined);

    parts.sqs = await startLocalSqs({ port: options.ports?.sqs ?? 0, host: HOST, dataDir: dataPath("sqs") });
    parts.dynamodb = await startLocalDynamoDb({ port: options.ports?.dynamodb ?? 0, host: HOST, dataDir: dataPath("dynamodb") });
    if (options.sagemaker ?? true) {
      parts.sagemaker = await startSageMakerEmulator({
        catalog: loadRouteCatalog(routesFile),
        port: options.ports?.sagemaker ?? 0,
        host: HOST,
        timeScale: options.timeScale ?? 1,
        scalingTimeCompression: options.scalingTimeCompression ?? 1,
        // The functions call the deployed names (`<prefix>-<name>`), as in AWS.
        resourcePrefix: prefix,
      });
    }

    const offlinePorts = wantOffline ? await concreteOfflinePorts(options.ports) : undefined;
    const wsManagement = offlinePorts && `http://${HOST}:${offlinePorts.websocket}`;
    const functionEnv: Record<string, string> = {
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_REGION: LOCAL_REGION,
      AWS_ENDPOINT_URL_SQS: parts.sqs.url,
      AWS_ENDPOINT_URL_DYNAMODB: options.functionEndpoints?.dynamodb ?? parts.dynamodb.url,
      // The emulator answers the control plane too (DescribeInferenceComponent: the copies running).
      ...(parts.sagemaker && { AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: parts.sagemaker.url, AWS_ENDPOINT_URL_SAGEMAKER: parts.sagemaker.url }),
      ...(wsManagement && { BATCHLINE_WS_ENDPOINT: wsManagement }),
      BATCHLINE_RESOURCE_PREFIX: prefix,
      // serverless-offline sets LAMBDA_TASK_ROOT=/var/task, where the default path would point.
      BATCHLINE_ROUTES_FILE: routesFile,
    };
    if (offlinePorts) {
      offlineStarting = startOffline({ projectDir, stage, ports: offlinePorts, env: functionEnv, ...onOutput(options) });
      offlineStarting.catch(() => undefined);
    }

    const resources = parseTemplate(await template);
    // Before anything is provisioned, as `osls deploy` fails on a mapping AWS refuses.
    const mappings = applyMappingOverrides(resources.mappings, options.mappingOverrides).map((m) => ({ ...m, polling: wantPollers && m.enabled }));
    const sqsClient = localSqsClient(parts.sqs.url);
    const ddbClient = localDynamoDbClient(parts.dynamodb.url);
    parts.clients = [sqsClient, ddbClient];
    const queues = await provisionQueues(sqsClient, applyQueueAttributeOverrides(resources.queues, options.queueAttributeOverrides));
    await provisionTables(ddbClient, resources.tables);
    const apiKeysTable = `${prefix}-api-keys`;
    if (!resources.tables.some((t) => t.TableName === apiKeysTable)) throw new Error(`the template has no table ${apiKeysTable}`);
    const apiKey = await resolveDevApiKey({ key: options.apiKey, dataDir: options.dataDir });
    await registerDevApiKey(ddbClient, apiKeysTable, apiKey, new Date());
    if (parts.sagemaker && (options.autoscaling ?? true)) parts.autoscaler = startLocalAutoscaler({ scaling: parts.sagemaker.scaling, log });
    parts.sweeper = startTtlSweeper({ ddb: ddbClient, tables: resources.ttl, log, intervalMs: options.retentionSweepMs });

    if (offlineStarting) {
      parts.offline = await offlineStarting;
      void parts.offline.exited.then(({ code, signal, expected }) => {
        if (!expected) log.error(`osls offline exited on its own (${signal ?? `exit ${code}`}): the HTTP, WebSocket and Lambda APIs are down`);
      });
    }
    const anyInvoke = options.invoke ?? (offlinePorts && lambdaInvoker(`http://${HOST}:${offlinePorts.lambda}`));
    const invoke = anyInvoke && withReservedConcurrency(anyInvoke, prefix, options.reservedConcurrency);
    for (const mapping of mappings.filter((m) => m.polling)) {
      const queue = queues.find((q) => q.name === mapping.queueName);
      if (!queue || !invoke) throw new Error(`${mapping.logicalId}: no queue ${mapping.queueName} or nothing to invoke`);
      const { sqs } = parts;
      parts.mappings.push(
        startEventSourceMapping({
          sqs: sqsClient,
          queueUrl: queue.url,
          queueArn: queue.arn,
          mapping,
          invoke,
          log,
          wakeReceivers: () => sqs.wakeReceivers(),
        }),
      );
    }

    return {
      stage,
      prefix,
      endpoints: {
        sqs: parts.sqs.url,
        dynamodb: parts.dynamodb.url,
        sagemaker: parts.sagemaker?.url,
        http: offlinePorts && `http://${HOST}:${offlinePorts.http}`,
        websocket: offlinePorts && `ws://${HOST}:${offlinePorts.websocket}`,
        connections: wsManagement,
        lambda: offlinePorts && `http://${HOST}:${offlinePorts.lambda}`,
      },
      apiKey,
      queues,
      tables: resources.tables.map((t) => t.TableName),
      mappings,
      functionEnv,
      sagemaker: parts.sagemaker,
      stop,
    };
  } catch (error) {
    // Let the children finish first: none is left behind, nor its scratch folder.
    await template?.catch(() => undefined);
    parts.offline ??= await offlineStarting?.catch(() => undefined);
    await stop().catch((stopError: unknown) => log.error(`stopping after a failed start: ${String(stopError)}`));
    throw error;
  }
}

/** `invoke` with at most `limits[name]` invocations of function `<prefix>-<name>` running at once. */
export function withReservedConcurrency(invoke: Invoker, prefix: string, limits: Readonly<Record<string, number>> = {}): Invoker {
  const limiters = new Map<string, LimitFunction>();
  for (const [name, limit] of Object.entries(limits)) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new Error(`reservedConcurrency: ${name}: must be a positive integer`);
    limiters.set(`${prefix}-${name}`, pLimit(limit));
  }
  return (functionName, event) => {
    const limiter = limiters.get(functionName);
    return limiter ? limiter(() => invoke(functionName, event)) : invoke(functionName, event);
  };
}

/**
 * The template's mappings with `overrides` (by queue name) applied, each checked as AWS's
 * CreateEventSourceMapping checks it (EventSourceMappingRefused, in AWS's words, naming the
 * mapping as CloudFormation does); an override for no mapping is an error.
 */
export function applyMappingOverrides(
  mappings: readonly EventSourceMappingDefinition[],
  overrides: MappingOverrides = {},
): EventSourceMappingDefinition[] {
  for (const queueName of Object.keys(overrides)) {
    if (!mappings.some((m) => m.queueName === queueName)) throw new Error(`mappingOverrides: no event source mapping reads queue ${queueName}`);
  }
  return mappings.map((m) => {
    const override = overrides[m.queueName];
    const merged = override ? { ...m, ...override } : m;
    if (override) {
      // The API takes integers only; the ranges are AWS's checks, below.
      for (const key of ["batchSize", "maximumBatchingWindowSeconds", "maximumConcurrency"] as const) {
        const value = merged[key];
        if (value !== undefined && !Number.isInteger(value)) throw new Error(`mappingOverrides: ${m.queueName}: ${key} must be a whole number, got ${value}`);
      }
    }
    assertMappingAccepted(merged, `CREATE_FAILED: ${m.logicalId} (AWS::Lambda::EventSourceMapping) for queue ${m.queueName}`);
    return merged;
  });
}

/** The template's queues with `overrides` (by queue name) on their attributes; an override for no queue is an error. */
export function applyQueueAttributeOverrides(queues: readonly QueueDefinition[], overrides: QueueAttributeOverrides = {}): QueueDefinition[] {
  for (const queueName of Object.keys(overrides)) {
    if (!queues.some((q) => q.name === queueName)) throw new Error(`queueAttributeOverrides: no queue ${queueName} in the template`);
  }
  return queues.map((q) => {
    const override = overrides[q.name];
    if (!override) return q;
    if ("RedrivePolicy" in override) throw new Error(`queueAttributeOverrides: ${q.name}: the RedrivePolicy comes from the template`);
    return { ...q, attributes: { ...q.attributes, ...override } };
  });
}

type Parts = {
  sqs?: LocalSqs;
  dynamodb?: LocalDynamoDb;
  sagemaker?: SageMakerEmulator;
  autoscaler?: LocalAutoscaler;
  offline?: RunningOffline;
  clients?: { destroy(): void }[];
  mappings: RunningEventSourceMapping[];
  sweeper?: RunningSweeper;
};

/** In dependency order: the pollers still need offline and SQS to finish what they hold. */
async function stopParts(parts: Parts, log: Logger): Promise<void> {
  parts.autoscaler?.stop();
  parts.autoscaler = undefined;
  const mappings = parts.mappings.splice(0);
  await Promise.all([...mappings.map((m) => m.stop()), parts.sweeper?.stop()]);
  parts.sweeper = undefined;
  const { offline, sqs, dynamodb, sagemaker, clients } = parts;
  parts.offline = parts.sqs = parts.dynamodb = parts.sagemaker = parts.clients = undefined;
  await offline?.stop();
  for (const client of clients ?? []) client.destroy();
  const closing = await Promise.allSettled([sagemaker?.close(), sqs?.close(), dynamodb?.close()]);
  for (const result of closing) if (result.status === "rejected") log.warn(`closing an emulator: ${String(result.reason)}`);
}

/** serverless-offline cannot listen on port 0: free ports are picked here. */
async function concreteOfflinePorts(ports: Partial<StackPorts> | undefined) {
  const pick = async (port: number | undefined) => (port ? port : await freePort(HOST));
  return { http: await pick(ports?.http), websocket: await pick(ports?.websocket), lambda: await pick(ports?.lambda) };
}

function onOutput(options: StackOptions) {
  return options.onOfflineOutput ? { onOutput: options.onOfflineOutput } : {};
}

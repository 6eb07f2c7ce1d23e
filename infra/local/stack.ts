import { startLocalAutoscaler } from "./autoscaler.ts";
import { registerDevApiKey, resolveDevApiKey } from "./dev-key.ts";
import { startFrontDoor } from "./front-door.ts";
import { localDynamoDbClient } from "./dynamodb.ts";
import { type RunningOffline, startOffline } from "./offline.ts";
import { type ProvisionedQueue, provisionBuckets, provisionQueues, provisionTables } from "./provision.ts";
import type { SageMakerEmulator } from "./sagemaker/server.ts";
import { assertPortFree, freePort } from "./ports.ts";
import { localS3Client, localSqsClient } from "./sqs.ts";
import { concreteOfflinePorts, functionEnvironment, pollerInvoker, startPollers } from "./stack-functions.ts";
import { HOST, type StackOptions, stackSettings } from "./stack-options.ts";
import { applyMappingOverrides, applyQueueAttributeOverrides } from "./stack-overrides.ts";
import { type Parts, startEmulators, stopParts } from "./stack-parts.ts";
import { type EventSourceMappingDefinition, packageTemplate, parseTemplate } from "./template.ts";
import type { StoreControl } from "./store-process.ts";
import { startTtlSweeper } from "./ttl-sweeper.ts";
import { type RunningScheduler, startScheduler } from "./scheduler.ts";
import { lambdaEventInvoker } from "./lambda-invoker.ts";
import { httpApiAction, meteredEndpoints, meteredOfflineOutput } from "./stack-metering.ts";

// The stack's whole API stays here, so that importers need not know how it is split into stack-*.ts.
export type { MappingOverride, MappingOverrides, PollerInvocation, QueueAttributeOverrides, StackOptions, StackPorts } from "./stack-options.ts";
export { applyMappingOverrides, applyQueueAttributeOverrides } from "./stack-overrides.ts";
export { observedInvoker, withReservedConcurrency } from "./stack-functions.ts";
export type { StoreControl } from "./store-process.ts";

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
  /** The template's schedules (EventBridge rules); undefined when offline or the pollers do not run. */
  readonly scheduler: Pick<RunningScheduler, "runNow"> | undefined;
  /** SIGKILL and restart of the SQS and DynamoDB servers; undefined unless `storeProcesses` is on. */
  readonly stores: { readonly sqs: StoreControl; readonly dynamodb: StoreControl } | undefined;
  /** Stops pollers (waiting for invocations in flight), then offline, then the emulators. */
  stop(): Promise<void>;
};

/**
 * The embedded stack: fauxqs, dynalite, the SageMaker emulator, osls offline and the SQS event
 * source mappings, with queues and tables provisioned from the CloudFormation that `osls package`
 * generates. Starting again on the same dataDir keeps every queue, message, table and item.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const settings = stackSettings(options);
  const { projectDir, stage, prefix, log } = settings;
  const parts: Parts = { mappings: [] };
  const stop = () => stopParts(parts, log);
  let offlineStarting: Promise<RunningOffline> | undefined;
  let template: Promise<unknown> | undefined;
  try {
    // osls takes seconds just to start: it packages while the emulators come up.
    template = packageTemplate({ projectDir, stage });
    template.catch(() => undefined);
    const emulators = await startEmulators(parts, settings, options);
    const { sqs, dynamodb, sagemaker } = emulators;

    const offlinePorts = settings.offline ? await concreteOfflinePorts(options.ports) : undefined;
    const wsManagement = offlinePorts && `http://${HOST}:${offlinePorts.websocket}`;
    const { meter } = options;
    const metered = meter && (await meteredEndpoints(meter, { dynamodb: options.functionEndpoints?.dynamodb ?? dynamodb.url, connections: wsManagement }, (parts.proxies = [])));
    const functionEnv = metered
      ? functionEnvironment(emulators, metered.connections, settings, { ...options, functionEndpoints: { ...options.functionEndpoints, dynamodb: metered.dynamodb } })
      : functionEnvironment(emulators, wsManagement, settings, options);
    let functionMemoryMb: Readonly<Record<string, number>> = {};
    if (offlinePorts) {
      // Clients reach offline's HTTP API through the front door (API Gateway's and Lambda's
      // request limits), which takes the HTTP port; offline listens behind it.
      await assertPortFree(offlinePorts.http, "HTTP API");
      const behindDoor = await freePort(HOST);
      const onRequest = meter && ((method: string, url: string) => meter.request("apigateway-http", httpApiAction(method, url)));
      parts.frontDoor = await startFrontDoor({ host: HOST, port: offlinePorts.http, upstreamPort: behindDoor, onRequest });
      const ports = { ...offlinePorts, http: behindDoor };
      const onOutput = meter ? meteredOfflineOutput(meter, prefix, () => functionMemoryMb, options.onOfflineOutput) : options.onOfflineOutput;
      const env = options.offlineNodeOptions === undefined ? functionEnv : { ...functionEnv, NODE_OPTIONS: options.offlineNodeOptions };
      offlineStarting = startOffline({ projectDir, stage, ports, env, readyTimeoutMs: options.offlineReadyTimeoutMs, ...(onOutput && { onOutput }) });
      offlineStarting.catch(() => undefined);
    }

    const resources = parseTemplate(await template);
    functionMemoryMb = resources.functionMemoryMb;
    // Before anything is provisioned, as `osls deploy` fails on a mapping AWS refuses.
    const mappings = applyMappingOverrides(resources.mappings, options.mappingOverrides).map((m) => ({ ...m, polling: settings.pollers && m.enabled }));
    const sqsClient = localSqsClient(sqs.url);
    const ddbClient = localDynamoDbClient(dynamodb.url);
    const s3Client = localS3Client(sqs.url);
    parts.clients = [sqsClient, ddbClient, s3Client];
    const queues = await provisionQueues(sqsClient, applyQueueAttributeOverrides(resources.queues, options.queueAttributeOverrides));
    await provisionTables(ddbClient, resources.tables);
    await provisionBuckets(s3Client, resources.buckets);
    const apiKeysTable = `${prefix}-api-keys`;
    if (!resources.tables.some((t) => t.TableName === apiKeysTable)) throw new Error(`the template has no table ${apiKeysTable}`);
    const apiKey = await resolveDevApiKey({ key: options.apiKey, dataDir: options.dataDir });
    await registerDevApiKey(ddbClient, apiKeysTable, apiKey, new Date());
    if (sagemaker && (options.autoscaling ?? true)) parts.autoscaler = startLocalAutoscaler({ scaling: sagemaker.scaling, log });
    parts.sweeper = startTtlSweeper({ ddb: ddbClient, tables: resources.ttl, log, intervalMs: options.retentionSweepMs });

    if (offlineStarting) {
      parts.offline = await offlineStarting;
      void parts.offline.exited.then(({ code, signal, expected }) => {
        if (!expected) log.error(`osls offline exited on its own (${signal ?? `exit ${code}`}): the HTTP, WebSocket and Lambda APIs are down`);
      });
    }
    const invoke = pollerInvoker(options, offlinePorts, prefix);
    startPollers(parts.mappings, { mappings, queues, invoke, sqsClient, wakeReceivers: () => sqs.wakeReceivers(), log });
    // Schedules invoke through offline's Lambda API, as EventBridge invokes the deployed functions.
    if (offlinePorts && settings.pollers) {
      parts.scheduler = startScheduler({ schedules: resources.schedules, invoke: lambdaEventInvoker(`http://${HOST}:${offlinePorts.lambda}`), log, periodMs: options.schedulePeriodMs });
    }

    return {
      stage,
      prefix,
      endpoints: {
        sqs: sqs.url,
        dynamodb: dynamodb.url,
        sagemaker: sagemaker?.url,
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
      sagemaker,
      stores: parts.stores,
      scheduler: parts.scheduler && { runNow: (name: string) => parts.scheduler?.runNow(name) ?? Promise.resolve() },
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

import type { SQSClient } from "@aws-sdk/client-sqs";
import pLimit, { type LimitFunction } from "p-limit";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "./aws.ts";
import { type Invoker, type RunningEventSourceMapping, startEventSourceMapping } from "./event-source-mapping.ts";
import { lambdaInvoker } from "./lambda-invoker.ts";
import type { Logger } from "./log.ts";
import { freePort } from "./ports.ts";
import type { ProvisionedQueue } from "./provision.ts";
import { HOST, type PollerInvocation, type StackOptions, type StackPorts, type StackSettings } from "./stack-options.ts";
import type { Emulators } from "./stack-parts.ts";
import type { EventSourceMappingDefinition } from "./template.ts";

/** How the functions are wired to the stack: their environment, what invokes them, the pollers. */

export type OfflinePorts = { readonly http: number; readonly websocket: number; readonly lambda: number };

/** serverless-offline cannot listen on port 0: free ports are picked here. */
export async function concreteOfflinePorts(ports: Partial<StackPorts> | undefined): Promise<OfflinePorts> {
  const pick = async (port: number | undefined) => (port ? port : await freePort(HOST));
  return { http: await pick(ports?.http), websocket: await pick(ports?.websocket), lambda: await pick(ports?.lambda) };
}

/** The environment the functions get (endpoints, fake credentials, BATCHLINE_*); `wsManagement` is the `/@connections` base when offline runs. */
export function functionEnvironment(emulators: Emulators, wsManagement: string | undefined, settings: StackSettings, options: StackOptions): Record<string, string> {
  const { sqs, dynamodb, sagemaker } = emulators;
  return {
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: LOCAL_REGION,
    AWS_ENDPOINT_URL_SQS: options.functionEndpoints?.sqs ?? sqs.url,
    // fauxqs serves S3 too, on the same port: the files bucket and its presigned URLs.
    AWS_ENDPOINT_URL_S3: sqs.url,
    AWS_ENDPOINT_URL_DYNAMODB: options.functionEndpoints?.dynamodb ?? dynamodb.url,
    // The emulator answers the control plane too (DescribeInferenceComponent: the copies running).
    ...(sagemaker && { AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: sagemaker.url, AWS_ENDPOINT_URL_SAGEMAKER: sagemaker.url }),
    // No CloudWatch here: GET /v1/metrics reads fauxqs' inspection and the emulator's stats instead.
    ...(sagemaker && { BATCHLINE_METRICS_SOURCE: "embedded" }),
    ...(wsManagement && { BATCHLINE_WS_ENDPOINT: wsManagement }),
    BATCHLINE_RESOURCE_PREFIX: settings.prefix,
    // serverless-offline sets LAMBDA_TASK_ROOT=/var/task, where the default path would point.
    BATCHLINE_ROUTES_FILE: settings.routesFile,
    // Its receivers are local: a test's, a developer's (never in AWS, where loopback is Lambda's runtime API).
    BATCHLINE_ALLOW_LOOPBACK_WEBHOOKS: "true",
    ...(options.webhookFirstRetrySeconds !== undefined && { BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS: String(options.webhookFirstRetrySeconds) }),
  };
}

/** What the pollers invoke: `options.invoke`, else offline's Lambda API; undefined when neither runs. */
export function pollerInvoker(options: StackOptions, offlinePorts: OfflinePorts | undefined, prefix: string): Invoker | undefined {
  const anyInvoke = options.invoke ?? (offlinePorts && lambdaInvoker(`http://${HOST}:${offlinePorts.lambda}`));
  const observed = anyInvoke && options.onInvocation ? observedInvoker(anyInvoke, options.onInvocation) : anyInvoke;
  return observed && withReservedConcurrency(observed, prefix, options.reservedConcurrency);
}

/** `invoke`, telling `onInvocation` of each invocation as it starts. */
export function observedInvoker(invoke: Invoker, onInvocation: (invocation: PollerInvocation) => void): Invoker {
  return async (functionName, event) => {
    const ended = Promise.withResolvers<{ endedAt: number; error: string | undefined }>();
    onInvocation({ functionName, queueArn: event.Records[0]?.eventSourceARN, records: event.Records.length, startedAt: Date.now(), ended: ended.promise });
    try {
      const result = await invoke(functionName, event);
      ended.resolve({ endedAt: Date.now(), error: result.functionError });
      return result;
    } catch (error) {
      ended.resolve({ endedAt: Date.now(), error: "invoke" });
      throw error;
    }
  };
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

export type Pollers = {
  readonly mappings: readonly (EventSourceMappingDefinition & { readonly polling: boolean })[];
  readonly queues: readonly ProvisionedQueue[];
  readonly invoke: Invoker | undefined;
  readonly sqsClient: SQSClient;
  readonly wakeReceivers: () => void;
  readonly log: Logger;
};

/**
 * A poller for each mapping that polls, added to `running` one by one: if one cannot start, those
 * before it are there to be stopped.
 */
export function startPollers(running: RunningEventSourceMapping[], { mappings, queues, invoke, sqsClient, wakeReceivers, log }: Pollers): void {
  for (const mapping of mappings.filter((m) => m.polling)) {
    const queue = queues.find((q) => q.name === mapping.queueName);
    if (!queue || !invoke) throw new Error(`${mapping.logicalId}: no queue ${mapping.queueName} or nothing to invoke`);
    running.push(startEventSourceMapping({ sqs: sqsClient, queueUrl: queue.url, queueArn: queue.arn, mapping, invoke, log, wakeReceivers }));
  }
}

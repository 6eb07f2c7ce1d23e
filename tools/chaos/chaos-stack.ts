import type { Invoker } from "#local/event-source-mapping";
import type { Logger } from "#local/log";
import { startStack, type Stack } from "#local/stack";
import type { ChaosOptions } from "./options.ts";

export type ChaosStackSettings = {
  readonly options: ChaosOptions;
  readonly stage: string;
  /** The route queues' names, both lanes (`batchline-<stage>-<model>`, `...-interactive`). */
  readonly routeQueues: readonly string[];
  /** Where dynalite and fauxqs listen; the functions reach them through `functionsDynamoDb` and `functionsSqs` instead. */
  readonly dynamodbPort: number;
  readonly functionsDynamoDb: string;
  readonly sqsPort: number;
  readonly functionsSqs: string;
  /** Each store in a process of its own, which `Stack.stores` can SIGKILL and restart. */
  readonly storeProcesses: boolean;
  readonly invoke: Invoker;
  readonly writeLog: (line: string) => void;
};

/** The embedded stack, set up for a chaos run: its timings, a fixed fleet, our invoker and DynamoDB proxy. */
export function startChaosStack(settings: ChaosStackSettings): Promise<Stack> {
  const { options, routeQueues, writeLog } = settings;
  const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => writeLog(`[stack] warn ${m}`), error: (m) => writeLog(`[stack] error ${m}`) };
  return startStack({
    stage: settings.stage,
    timeScale: options.timeScale,
    // A fixed fleet: the faults under test are the endpoint's and the stores', not scaling's.
    autoscaling: false,
    ports: { dynamodb: settings.dynamodbPort, sqs: settings.sqsPort },
    storeProcesses: settings.storeProcesses,
    invoke: settings.invoke,
    functionEndpoints: { dynamodb: settings.functionsDynamoDb, sqs: settings.functionsSqs },
    queueAttributeOverrides: Object.fromEntries([
      ...routeQueues.map((q) => [q, { VisibilityTimeout: String(options.visibilityTimeoutSeconds) }]),
      // The template's DLQs hide a message six times the dead-letter function's 29 s; under
      // faults a dead letter whose handling failed comes back after SQS's default 30 s instead.
      ...(options.mode === "chaos" ? routeQueues.map((q) => [`${q}-dlq`, { VisibilityTimeout: "30" }]) : []),
    ]),
    ...(options.batchingWindowSeconds !== undefined && {
      mappingOverrides: Object.fromEntries(routeQueues.map((q) => [q, { maximumBatchingWindowSeconds: options.batchingWindowSeconds }])),
    }),
    log,
    // As the bench's: osls offline took over 120 s to listen beside three other stacks on 2 cores.
    offlineReadyTimeoutMs: 300_000,
    // The HTTP and WebSocket functions' warnings and errors; not serverless-offline's line per request.
    onOfflineOutput: (chunk) => {
      if (/"level":"(WARN|ERROR)"|Error/.test(chunk)) writeLog(`[offline] ${chunk.trimEnd()}`);
    },
  });
}

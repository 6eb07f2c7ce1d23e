import { join, resolve } from "node:path";
import type { Invoker } from "./event-source-mapping.ts";
import { type Logger, silentLogger } from "./log.ts";
import type { EventSourceMappingDefinition } from "./template.ts";
import type { RequestMeter } from "./request-meter.ts";

/** Every server of the stack listens here only. */
export const HOST = "127.0.0.1";

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
  /**
   * fauxqs and dynalite each in a process of their own, their data on disk (under `dataDir`, or a
   * scratch folder removed at stop), so that `Stack.stores` can SIGKILL and restart them (the
   * chaos run's store crashes). Default false: both in this process.
   */
  readonly storeProcesses?: boolean;
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
  /**
   * Every invocation the pollers make, as it starts (a bench lines its requests up with the
   * batcher invocations that carried them). Its time waiting for reserved concurrency is not counted.
   */
  readonly onInvocation?: (invocation: PollerInvocation) => void;
  /**
   * Scheduled functions' periods in ms by deployed function name (`batchline-<stage>-batchSweep`),
   * in place of the template's rate: a test that cannot wait a minute. Default: the template's.
   */
  readonly schedulePeriodMs?: Readonly<Record<string, number>>;
  /** How often expired items are deleted (DynamoDB TTL's stand-in); default a minute. */
  readonly retentionSweepMs?: number | undefined;
  readonly log?: Logger;
  /** How long osls offline may take to listen; default 120 s (a bench on a loaded machine needs more). */
  readonly offlineReadyTimeoutMs?: number | undefined;
  /**
   * NODE_OPTIONS for osls offline's process (and so for the functions it runs in process), e.g.
   * `--cpu-prof --cpu-prof-dir=DIR` for a profile of the HTTP and WebSocket APIs and the functions
   * (npm run bench profiles them so). Default: this process's own.
   */
  readonly offlineNodeOptions?: string | undefined;
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
   * e.g. a fault proxy in front of dynalite; the stack itself (provisioning, the dev key, the
   * pollers) still talks to the emulators directly. `sqs` is SQS alone (S3 stays on fauxqs).
   */
  readonly functionEndpoints?: { readonly dynamodb?: string; readonly sqs?: string };
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
  /**
   * A failed webhook's first backoff step in seconds (BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS),
   * default 30; later steps double it. For tests that watch a receiver come back within a minute.
   */
  readonly webhookFirstRetrySeconds?: number;
  /**
   * Counts what the pipeline asks of AWS, where AWS would bill it (stack-metering.ts): SQS and S3
   * at fauxqs, the functions' DynamoDB calls with their capacity units, their `@connections`
   * posts, the HTTP API's requests and every Lambda invocation with its billed duration.
   */
  readonly meter?: RequestMeter | undefined;
};

/** One invocation by an event source mapping: its delivery, and when it started and ended (wall clock, epoch ms). */
export type PollerInvocation = {
  readonly functionName: string;
  /** The queue the delivery came from (its records' eventSourceARN). */
  readonly queueArn: string | undefined;
  readonly records: number;
  readonly startedAt: number;
  /** Settles when it has answered: error is Lambda's FunctionError, or "invoke" when the invocation never happened. */
  readonly ended: Promise<{ readonly endedAt: number; readonly error: string | undefined }>;
};

export type QueueAttributeOverrides = Readonly<Record<string, Readonly<Record<string, string>>>>;

export type MappingOverride = Partial<Pick<EventSourceMappingDefinition, "batchSize" | "maximumBatchingWindowSeconds" | "maximumConcurrency">>;
export type MappingOverrides = Readonly<Record<string, MappingOverride>>;

/** StackOptions with their defaults filled in. */
export type StackSettings = {
  readonly projectDir: string;
  readonly stage: string;
  /** `batchline-<stage>`: the prefix of every queue and table. */
  readonly prefix: string;
  readonly log: Logger;
  readonly offline: boolean;
  readonly pollers: boolean;
  readonly routesFile: string;
  /** `<dataDir>/<name>`; undefined when the stack keeps everything in memory. */
  dataPath(name: string): string | undefined;
};

export function stackSettings(options: StackOptions): StackSettings {
  const projectDir = options.projectDir ?? process.cwd();
  const stage = options.stage ?? "local";
  const offline = options.offline ?? true;
  const pollers = options.pollers ?? (offline || options.invoke !== undefined);
  if (pollers && !offline && options.invoke === undefined) {
    throw new Error("pollers need something to invoke: start offline or pass `invoke`");
  }
  return {
    projectDir,
    stage,
    prefix: `batchline-${stage}`,
    log: options.log ?? silentLogger,
    offline,
    pollers,
    routesFile: options.routesFile === undefined ? join(projectDir, "infra", "routes.yml") : resolve(options.routesFile),
    dataPath: (name) => (options.dataDir === undefined ? undefined : join(options.dataDir, name)),
  };
}

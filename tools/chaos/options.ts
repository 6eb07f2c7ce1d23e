import type { DynamoDbFaultSettings } from "#local/dynamodb-fault-proxy";
import type { StoreCrashSchedule } from "./store-crashes.ts";

/** Everything a chaos run does; `defaultChaosOptions` is `npm run chaos`. */
export type ChaosOptions = {
  readonly mode: "chaos" | "burst";
  readonly jobs: number;
  readonly seed: number;
  /** Simulated GPU ms per wall ms. */
  readonly timeScale: number;
  readonly models: readonly string[];
  readonly maxTokens: readonly [number, number];
  /** All faults on (false: a clean run, e.g. a burst that measures memory alone). */
  readonly faults: boolean;
  readonly dynamodbFaults: DynamoDbFaultSettings;
  /** POST /_emulator/faults, with the outage given in wall seconds from when faults go on. */
  readonly sagemakerFaults: {
    readonly throttle_fraction: number;
    readonly error_fraction: number;
    readonly error_type: "ServiceUnavailable" | "InternalFailure" | "InternalDependencyException" | "ModelError";
    readonly outage?: { readonly after_wall_seconds: number; readonly for_wall_seconds: number; readonly kind: "unavailable" | "reset" };
  };
  /**
   * The DynamoDB and SQS servers SIGKILLed mid-run and restarted on their data (seconds from when
   * faults go on; with faults on only). The stores then run in processes of their own.
   */
  readonly storeCrashes: StoreCrashSchedule;
  /** Share of batcher invocations SIGKILLed, at a moment drawn uniformly in `killWindowMs` after the handler starts. */
  readonly killFraction: number;
  /**
   * At least this many batcher invocations are killed whatever the draw, each at the moment one
   * of its jobs is claimed: mid-batch for sure, however short invocations are (a short run still
   * sees kills). Armed on one invocation after another until they have landed.
   */
  readonly killFirst: number;
  readonly killWindowMs: readonly [number, number];
  /** The batcher's Lambda timeout (serverless.yml: 150 s) and the route queues' visibility timeout (900 s: six times it). */
  readonly lambdaTimeoutSeconds: number;
  readonly visibilityTimeoutSeconds: number;
  /**
   * The route mappings' MaximumBatchingWindowInSeconds instead of the routes file's; undefined:
   * the file's. For a batcher too short-lived to top its window up (a timeout under the
   * handler's finish reserve), a window lets an invocation take many jobs, as top-up would.
   */
  readonly batchingWindowSeconds: number | undefined;
  readonly subscribers: number;
  /** Share of accepted jobs the subscribers follow (all of them in a chaos run). */
  readonly followShare: number;
  /** Share of subscribers that drop and reconnect; the others stay connected all along. */
  readonly flakyShare: number;
  /** A flaky subscriber's connection lasts between these (ms). */
  readonly connectionLifeMs: readonly [number, number];
  readonly batchShare: number;
  readonly batchLines: number;
  readonly wsShare: number;
  readonly deadlineShare: number;
  readonly cancelShare: number;
  readonly submitConcurrency: number;
  /** After the last submission, how long jobs get to reach a terminal state. */
  readonly drainTimeoutMs: number;
  /** After that, how long connected subscribers get to receive the final events. */
  readonly notifyTimeoutMs: number;
  /** How often every job's status is read from dynalite; less often when a scan takes long (see StateSampler). */
  readonly sampleEveryMs: number;
  /** The batcher runners import a bundle (as Lambda would) or the TypeScript source. */
  readonly handlers: "bundle" | "source";
  readonly projectDir: string;
  /** Where latest.json and the logs go; undefined: nowhere. */
  readonly outDir: string | undefined;
};

export const defaultChaosOptions: ChaosOptions = {
  mode: "chaos",
  jobs: 5000,
  seed: 1,
  timeScale: 50,
  models: ["llama-2-7b", "llama-3-8b", "llama-3-1b"],
  maxTokens: [4, 32],
  faults: true,
  dynamodbFaults: { beforeFraction: 0.02, afterFraction: 0.02, throttleShare: 0.5 },
  sagemakerFaults: {
    throttle_fraction: 0.05,
    error_fraction: 0.05,
    error_type: "ServiceUnavailable",
    // Long enough that jobs caught in it use up their deliveries: the DLQ and the dead-letter function get work.
    outage: { after_wall_seconds: 30, for_wall_seconds: 30, kind: "unavailable" },
  },
  // Mid-submit (5,000 jobs take minutes to submit), after the SageMaker outage, one store at a time.
  storeCrashes: { dynamodb: { afterWallSeconds: 70, forWallSeconds: 10 }, sqs: { afterWallSeconds: 110, forWallSeconds: 10 } },
  killFraction: 0.15,
  killFirst: 1,
  killWindowMs: [500, 10_000],
  lambdaTimeoutSeconds: 90,
  visibilityTimeoutSeconds: 180,
  batchingWindowSeconds: undefined,
  subscribers: 12,
  followShare: 1,
  flakyShare: 0.5,
  connectionLifeMs: [3_000, 20_000],
  batchShare: 0.8,
  batchLines: 100,
  wsShare: 0.3,
  deadlineShare: 0.1,
  cancelShare: 0.01,
  // Submits wait mostly on DynamoDB and SQS round trips: 12 at once accept 1,500 jobs in 129 s
  // where 6 took 179 s (on 2 busy cores), and the run is mostly its submitting.
  submitConcurrency: 12,
  drainTimeoutMs: 15 * 60_000,
  notifyTimeoutMs: 60_000,
  sampleEveryMs: 3000,
  handlers: "bundle",
  projectDir: process.cwd(),
  outDir: "chaos-results",
};

import { laneQueueSuffix, type Lane } from "./core/lanes.ts";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { LogLevel as LogLevels } from "@aws-lambda-powertools/logger";
import { parse as parseYaml } from "yaml";
import { REQUEUE_GRACE_MS } from "./core/batcher-decision.ts";
import { buildRouteCatalog, readProfileFiles, type RouteCatalog } from "./core/routes.ts";

/**
 * Every environment variable the functions read, parsed once at cold start. A missing or malformed
 * variable fails the cold start with its name, rather than a confusing error on the first request.
 *
 * | variable                                   | meaning                                                       |
 * |--------------------------------------------|---------------------------------------------------------------|
 * | BATCHLINE_RESOURCE_PREFIX                  | `<service>-<stage>`: prefix of every table, queue, SageMaker  |
 * |                                            | endpoint and inference component name                         |
 * | BATCHLINE_WS_ENDPOINT                      | API Gateway management endpoint for PostToConnection          |
 * | BATCHLINE_ROUTES_FILE                      | path of routes.yml (default: infra/routes.yml in the package) |
 * | BATCHLINE_LOG_LEVEL                        | Powertools' TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL or      |
 * |                                            | SILENT, any case (default INFO)                               |
 * | BATCHLINE_TOP_UP_BUDGET_SECONDS            | longest a batcher tops its delivery up from the queue         |
 * |                                            | (default 60)                                                  |
 * | BATCHLINE_FINISH_RESERVE_SECONDS           | what a batcher keeps after the top-up for its last GPU        |
 * |                                            | calls and final writes (default 75, the least allowed)        |
 * | BATCHLINE_BATCHER_TIMEOUT_SECONDS          | the batcher function's timeout: the template sets it on       |
 * |                                            | the batcher from the number its Timeout comes from            |
 * | BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS | the route queues' visibility timeout: the template sets       |
 * |                                            | it on the batcher from the number the queues' come from       |
 * | BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS      | a failed webhook's first backoff step (default 30); tests of  |
 * |                                            | the embedded stack shorten it                                 |
 * | BATCHLINE_ALLOW_LOOPBACK_WEBHOOKS          | "true": webhook URLs may be http:// to a loopback address     |
 * |                                            | (the embedded stack only; default false)                      |
 * | BATCHLINE_METRICS_SOURCE                   | where GET /v1/metrics reads queues and engines: cloudwatch    |
 * |                                            | (default, AWS) or embedded (fauxqs' inspection and the        |
 * |                                            | emulator's stats, at AWS_ENDPOINT_URL_SQS and                 |
 * |                                            | AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, both then required)       |
 *
 * Checked at start, each failure naming the variable:
 * - the finish reserve covers a job that starts late (the batcher's requeue grace, 5 s), its GPU
 *   call (SageMaker's 60 s invocation limit) and the final writes (10 s);
 * - the top-up budget plus the finish reserve fit in BATCHLINE_BATCHER_TIMEOUT_SECONDS;
 * - BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS is at least BATCHLINE_BATCHER_TIMEOUT_SECONDS, as
 *   AWS requires of an event source mapping.
 * The last two only where the template set the timeouts (the deployed batcher, and the embedded
 * stack's, which runs the template): test harnesses that pick their own timeouts leave them unset.
 *
 * The AWS endpoints come from the SDK's own variables (AWS_ENDPOINT_URL_SQS, _DYNAMODB, _S3,
 * _SAGEMAKER_RUNTIME, _APIGATEWAYMANAGEMENTAPI), so the same code runs in AWS and locally.
 */
export type Config = {
  readonly resourcePrefix: string;
  readonly wsEndpoint: string;
  readonly catalog: RouteCatalog;
  readonly tables: {
    readonly jobs: string;
    readonly idempotencyKeys: string;
    readonly batches: string;
    readonly apiKeys: string;
    readonly connections: string;
    readonly subscriptions: string;
    readonly routeSettings: string;
    readonly capacity: string;
    readonly wsTickets: string;
    readonly tenants: string;
    readonly usage: string;
    readonly queueBoard: string;
    readonly files: string;
    readonly webhookEndpoints: string;
  };
  /** The webhooks queue (infra/webhooks.cjs). */
  readonly webhookQueueName: string;
  readonly webhooks: WebhookSettings;
  /** The bucket of files' bytes (`<prefix>-files`). */
  readonly filesBucket: string;
  /** Queue name of a route's lane (the SQS queue its jobs wait in); the batch lane's is the route's name alone. */
  queueName(route: string, lane?: Lane): string;
  /** The queue of OpenAI batches' ingest and finalize steps (`<prefix>-batch-control`). */
  readonly batchControlQueue: string;
  /** The deployed names of the SageMaker endpoints and inference components the batcher invokes. */
  readonly sagemaker: SageMakerNames;
  readonly logLevel: LogLevel;
  readonly batcher: BatcherTiming;
  readonly metricsSource: MetricsSourceConfig;
};

/** Where GET /v1/metrics reads what CloudWatch has in AWS (docs/metrics.md). */
export type MetricsSourceConfig =
  | { readonly kind: "cloudwatch" }
  | { readonly kind: "embedded"; readonly sqsEndpoint: string; readonly emulatorEndpoint: string };

export function loadMetricsSource(env: Env): MetricsSourceConfig {
  const kind = env.BATCHLINE_METRICS_SOURCE?.trim() || "cloudwatch";
  if (kind === "cloudwatch") return { kind };
  if (kind !== "embedded") throw new ConfigError(`BATCHLINE_METRICS_SOURCE must be cloudwatch or embedded, got "${kind}"`);
  const url = (name: string) => {
    const value = required(env, name);
    if (!URL.canParse(value)) throw new ConfigError(`${name} must be a URL, got "${value}"`);
    return value;
  };
  return { kind, sqsEndpoint: url("AWS_ENDPOINT_URL_SQS"), emulatorEndpoint: url("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME") };
}

export type WebhookSettings = {
  readonly firstRetrySeconds: number;
  readonly allowLoopback: boolean;
};

/** Powertools' log levels, as the Logger takes them. */
export type LogLevel = (typeof LogLevels)[keyof typeof LogLevels];

/** How a batcher invocation spends its time, and the deployed timeouts it was checked against. */
export type BatcherTiming = {
  /** Longest a batcher keeps topping its delivery up from the queue. */
  readonly topUpBudgetMs: number;
  /** What must stay after the top-up for the last GPU calls and the final writes. */
  readonly finishReserveMs: number;
  /** The batcher function's timeout; undefined where the template did not set it. */
  readonly timeoutSeconds: number | undefined;
  /** The route queues' visibility timeout; undefined where the template did not set it. */
  readonly queueVisibilityTimeoutSeconds: number | undefined;
};

/** Deployed SageMaker names of the endpoints and components of routes.yml. */
export type SageMakerNames = {
  /** EndpointName of a routes.yml endpoint. */
  endpoint(endpoint: string): string;
  /** InferenceComponentName of a routes.yml component. */
  inferenceComponent(component: string): string;
};

/**
 * The one naming rule of deployed SageMaker resources: `<prefix>-<name in routes.yml>`, as queues
 * and tables are named, so that two stages in one account and region do not collide.
 * infra/sagemaker.cjs names the endpoints and inference components with this very function.
 */
export function sageMakerNames(resourcePrefix: string): SageMakerNames {
  return {
    endpoint: (endpoint) => `${resourcePrefix}-${endpoint}`,
    inferenceComponent: (component) => `${resourcePrefix}-${component}`,
  };
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`environment variable ${name} is required`);
  return value;
}

const LOG_LEVELS: readonly LogLevel[] = Object.values(LogLevels);

/** BATCHLINE_LOG_LEVEL; the logger reads it at import, before the rest of the config. */
export function parseLogLevel(env: Env): LogLevel {
  const value = env.BATCHLINE_LOG_LEVEL?.trim() || "INFO";
  const level = LOG_LEVELS.find((l) => l === value.toUpperCase());
  if (!level) throw new ConfigError(`BATCHLINE_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${value}"`);
  return level;
}

type SecondsRule = { readonly whole?: boolean; readonly min: number; readonly max?: number; readonly range: string };

/** A duration in seconds, or undefined where the variable is unset. */
function seconds(env: Env, name: string, rule: SecondsRule): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  const shape = rule.whole ? /^\d+$/ : /^\d+(\.\d+)?$/;
  if (!shape.test(raw) || value < rule.min || value > (rule.max ?? Number.POSITIVE_INFINITY)) {
    throw new ConfigError(`${name} must be ${rule.whole ? "a whole number of seconds" : "a number of seconds"} ${rule.range}, got "${raw}"`);
  }
  return value;
}

/** SageMaker's limit on one InvokeEndpoint call: the longest a GPU call can take. */
export const SAGEMAKER_INVOCATION_LIMIT_SECONDS = 60;
/** After the top-up ends, a job the batcher already holds may still start for this long. */
const LATE_START_SECONDS = REQUEUE_GRACE_MS / 1000;
/**
 * After the last GPU call answers: its jobs' result writes, notifications and message deletes,
 * then the batcher's closing ledger and batch-progress writes.
 */
const FINAL_WRITES_SECONDS = 10;
const MIN_FINISH_RESERVE_SECONDS = LATE_START_SECONDS + SAGEMAKER_INVOCATION_LIMIT_SECONDS + FINAL_WRITES_SECONDS;

export function loadBatcherTiming(env: Env): BatcherTiming {
  const topUpBudget = seconds(env, "BATCHLINE_TOP_UP_BUDGET_SECONDS", { min: 0, range: "of at least 0" }) ?? 60;
  const finishReserve = seconds(env, "BATCHLINE_FINISH_RESERVE_SECONDS", { min: 0, range: "of at least 0" }) ?? 75;
  if (finishReserve < MIN_FINISH_RESERVE_SECONDS) {
    throw new ConfigError(
      `BATCHLINE_FINISH_RESERVE_SECONDS must be at least ${MIN_FINISH_RESERVE_SECONDS}, got ${finishReserve}: a job may start ${LATE_START_SECONDS} s after the top-up, ` +
        `its GPU call may take SageMaker's ${SAGEMAKER_INVOCATION_LIMIT_SECONDS} s, and the final writes need ${FINAL_WRITES_SECONDS} s`,
    );
  }
  const timeout = seconds(env, "BATCHLINE_BATCHER_TIMEOUT_SECONDS", { whole: true, min: 1, max: 900, range: "from 1 to 900 (Lambda's timeouts)" });
  const visibility = seconds(env, "BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS", { whole: true, min: 0, max: 43_200, range: "from 0 to 43200 (SQS's visibility timeouts)" });
  if (visibility !== undefined && timeout === undefined) {
    throw new ConfigError("BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS is set without BATCHLINE_BATCHER_TIMEOUT_SECONDS, the timeout it is checked against");
  }
  if (timeout !== undefined && topUpBudget + finishReserve > timeout) {
    throw new ConfigError(
      `BATCHLINE_BATCHER_TIMEOUT_SECONDS must be at least the top-up budget plus the finish reserve, ${topUpBudget} + ${finishReserve} = ${topUpBudget + finishReserve}, got ${timeout}`,
    );
  }
  if (timeout !== undefined && visibility !== undefined && visibility < timeout) {
    // AWS's CreateEventSourceMapping refuses the same, in these words (InvalidParameterValueException).
    throw new ConfigError(`BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS: Queue visibility timeout: ${visibility} seconds is less than Function timeout: ${timeout} seconds`);
  }
  return Object.freeze({
    topUpBudgetMs: topUpBudget * 1000,
    finishReserveMs: finishReserve * 1000,
    timeoutSeconds: timeout,
    queueVisibilityTimeoutSeconds: visibility,
  });
}

/**
 * When a batcher invocation stops topping its delivery up: after the top-up budget, or earlier
 * where less than the budget and the finish reserve is left (a shorter timeout than the
 * template's, as tests run it).
 */
export function topUpUntil(timing: BatcherTiming, now: Date, remainingMs: number): Date {
  return new Date(now.getTime() + Math.max(0, Math.min(timing.topUpBudgetMs, remainingMs - timing.finishReserveMs)));
}

/**
 * The latest a batcher invocation may still top its delivery up: what the finish reserve leaves
 * of its time. Past topUpUntil it does so only while no other batcher will for longer (decideNext).
 */
export function topUpLatest(timing: BatcherTiming, now: Date, remainingMs: number): Date {
  return new Date(now.getTime() + Math.max(0, remainingMs - timing.finishReserveMs));
}

export function loadWebhookSettings(env: Env): WebhookSettings {
  const firstRetrySeconds = seconds(env, "BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS", { whole: true, min: 1, max: 900, range: "from 1 to 900 (SendMessage's longest delay)" }) ?? 30;
  const loopback = env.BATCHLINE_ALLOW_LOOPBACK_WEBHOOKS?.trim() || "false";
  if (loopback !== "true" && loopback !== "false") throw new ConfigError(`BATCHLINE_ALLOW_LOOPBACK_WEBHOOKS must be true or false, got "${loopback}"`);
  return Object.freeze({ firstRetrySeconds, allowLoopback: loopback === "true" });
}

export function defaultRoutesFile(env: Env): string {
  const file = env.BATCHLINE_ROUTES_FILE ?? "infra/routes.yml";
  if (isAbsolute(file)) return file;
  // In Lambda the package root is LAMBDA_TASK_ROOT; locally it is the project directory.
  return join(env.LAMBDA_TASK_ROOT ?? process.cwd(), file);
}

export function loadRouteCatalog(path: string): RouteCatalog {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ConfigError(`cannot read routes file ${path}`, { cause });
  }
  // A component's profile file is named relative to the routes file (readProfileFiles).
  return buildRouteCatalog(readProfileFiles(parseYaml(text), (reference) => readFileSync(resolve(dirname(path), reference), "utf8")));
}

export function loadConfig(env: Env = process.env): Config {
  const resourcePrefix = required(env, "BATCHLINE_RESOURCE_PREFIX");
  if (!/^[a-zA-Z0-9_.-]+$/.test(resourcePrefix)) {
    throw new ConfigError(`BATCHLINE_RESOURCE_PREFIX must be letters, digits, '_', '.', '-', got "${resourcePrefix}"`);
  }
  const wsEndpoint = required(env, "BATCHLINE_WS_ENDPOINT");
  if (!URL.canParse(wsEndpoint)) throw new ConfigError(`BATCHLINE_WS_ENDPOINT must be a URL, got "${wsEndpoint}"`);
  const table = (suffix: string) => `${resourcePrefix}-${suffix}`;
  return Object.freeze({
    resourcePrefix,
    wsEndpoint,
    catalog: loadRouteCatalog(defaultRoutesFile(env)),
    tables: Object.freeze({
      jobs: table("jobs"),
      idempotencyKeys: table("idempotency-keys"),
      batches: table("batches"),
      apiKeys: table("api-keys"),
      connections: table("connections"),
      subscriptions: table("subscriptions"),
      routeSettings: table("route-settings"),
      capacity: table("capacity"),
      wsTickets: table("ws-tickets"),
      tenants: table("tenants"),
      usage: table("usage"),
      queueBoard: table("queue-board"),
      files: table("files"),
      webhookEndpoints: table("webhook-endpoints"),
    }),
    webhookQueueName: `${resourcePrefix}-webhooks`,
    webhooks: loadWebhookSettings(env),
    filesBucket: table("files"),
    queueName: (route: string, lane: Lane = "batch") => `${resourcePrefix}-${route}${laneQueueSuffix(lane)}`,
    batchControlQueue: `${resourcePrefix}-batch-control`,
    sagemaker: Object.freeze(sageMakerNames(resourcePrefix)),
    logLevel: parseLogLevel(env),
    batcher: loadBatcherTiming(env),
    metricsSource: loadMetricsSource(env),
  });
}

/** The lane of a route queue, from its name or ARN: the event source mapping says which queue a delivery came from. */
export function laneOfQueue(queueNameOrArn: string): Lane {
  return queueNameOrArn.endsWith(laneQueueSuffix("interactive")) ? "interactive" : "batch";
}

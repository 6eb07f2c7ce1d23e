import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { buildRouteCatalog, type RouteCatalog } from "./core/routes.ts";

/**
 * Every environment variable the functions read, parsed once at cold start. A missing or malformed
 * variable fails the cold start with its name, rather than a confusing error on the first request.
 *
 * | variable                     | meaning                                                        |
 * |------------------------------|----------------------------------------------------------------|
 * | BATCHLINE_RESOURCE_PREFIX    | `<service>-<stage>`: prefix of every table, queue, SageMaker    |
 * |                              | endpoint and inference component name                          |
 * | BATCHLINE_WS_ENDPOINT        | API Gateway management endpoint for PostToConnection            |
 * | BATCHLINE_ROUTES_FILE        | path of routes.yml (default: infra/routes.yml in the package)   |
 * | BATCHLINE_LOG_LEVEL          | DEBUG, INFO, WARN or ERROR (default INFO)                       |
 *
 * The AWS endpoints come from the SDK's own variables (AWS_ENDPOINT_URL_SQS, _DYNAMODB,
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
  };
  /** Queue name of a route (the SQS queue its jobs wait in). */
  queueName(route: string): string;
  /** The deployed names of the SageMaker endpoints and inference components the batcher invokes. */
  readonly sagemaker: SageMakerNames;
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
  return buildRouteCatalog(parseYaml(text));
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
    }),
    queueName: (route: string) => `${resourcePrefix}-${route}`,
    sagemaker: Object.freeze(sageMakerNames(resourcePrefix)),
  });
}

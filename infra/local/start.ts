// `npm start`: the embedded stack on 127.0.0.1 until Ctrl-C. Settings come from BATCHLINE_* variables.
import { join, resolve } from "node:path";
import { type DashboardServer, startDashboard } from "./dashboard-server.ts";
import { consoleLogger, parseLogLevel } from "./log.ts";
import { type Stack, type StackPorts, startStack } from "./stack.ts";

type Env = Readonly<Record<string, string | undefined>>;

function portFrom(env: Env, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name} must be a port number, got "${value}"`);
  return port;
}

function positiveNumberFrom(env: Env, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  const number = Number(value);
  if (!(number > 0)) throw new Error(`${name} must be a positive number, got "${value}"`);
  return number;
}

function onOffFrom(env: Env, name: string, fallback: boolean): boolean {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  if (value === "on" || value === "off") return value === "on";
  throw new Error(`${name} must be on or off, got "${value}"`);
}

function portsFrom(env: Env): StackPorts & { readonly dashboard: number } {
  return {
    sqs: portFrom(env, "BATCHLINE_SQS_PORT", 9324),
    dynamodb: portFrom(env, "BATCHLINE_DYNAMODB_PORT", 8000),
    sagemaker: portFrom(env, "BATCHLINE_SAGEMAKER_PORT", 8080),
    http: portFrom(env, "BATCHLINE_HTTP_PORT", 3000),
    dashboard: portFrom(env, "BATCHLINE_DASHBOARD_PORT", 3003),
    websocket: portFrom(env, "BATCHLINE_WS_PORT", 3001),
    lambda: portFrom(env, "BATCHLINE_LAMBDA_PORT", 3002),
  };
}

type Timing = { readonly timeScale: number; readonly autoscaling: boolean; readonly scalingTimeCompression: number };

function describe(stack: Stack, dashboard: DashboardServer | undefined, dataDir: string, timing: Timing, seconds: number): string {
  const e = stack.endpoints;
  const scaling = timing.autoscaling ? `autoscaling on, scaling time compression ${timing.scalingTimeCompression}` : "autoscaling off";
  const rows: [string, string | undefined][] = [
    ["HTTP API", e.http],
    ["dashboard", dashboard && `${dashboard.url}#key=${stack.apiKey}`],
    ["WebSocket", e.websocket && `${e.websocket}   (PostToConnection: ${e.connections}/@connections)`],
    ["Lambda API", e.lambda],
    ["SQS", e.sqs],
    ["DynamoDB", e.dynamodb],
    ["SageMaker", e.sagemaker && `${e.sagemaker}   (time scale ${timing.timeScale}, ${scaling})`],
    ["data", dataDir],
    ...stack.mappings.map((m): [string, string] => [
      "poller",
      `${m.queueName} -> ${m.functionName} (batch ${m.batchSize}, window ${m.maximumBatchingWindowSeconds} s, ` +
        `concurrency ${m.maximumConcurrency ?? "default"})${m.polling ? "" : " disabled"}`,
    ]),
    ["dev API key", `${stack.apiKey}   (tenant dev; export BATCHLINE_API_KEY to choose one)`],
  ];
  const lines = rows.filter(([, v]) => v !== undefined).map(([k, v]) => `  ${k.padEnd(12)} ${v}`);
  return [`batchline stack "${stack.stage}" ready in ${seconds.toFixed(1)} s`, ...lines, "Ctrl-C to stop.", ""].join("\n");
}

async function main(env: Env): Promise<void> {
  const started = performance.now();
  const log = consoleLogger(parseLogLevel(env.BATCHLINE_LOG_LEVEL));
  const dataDir = resolve(env.BATCHLINE_DATA_DIR || ".data");
  const timing: Timing = {
    timeScale: positiveNumberFrom(env, "BATCHLINE_TIME_SCALE", 1),
    autoscaling: onOffFrom(env, "BATCHLINE_AUTOSCALING", true),
    scalingTimeCompression: positiveNumberFrom(env, "BATCHLINE_SCALING_TIME_COMPRESSION", 1),
  };
  const ports = portsFrom(env);
  const stack = await startStack({
    stage: env.BATCHLINE_STAGE || "local",
    dataDir,
    ports,
    ...timing,
    apiKey: env.BATCHLINE_API_KEY,
    log,
    onOfflineOutput: (chunk) => process.stdout.write(chunk),
  });
  const dashboard = stack.endpoints.http
    ? await startDashboard({ host: "127.0.0.1", port: ports.dashboard, api: stack.endpoints.http, outDir: join(dataDir, "dashboard") })
    : undefined;
  process.stdout.write(describe(stack, dashboard, dataDir, timing, (performance.now() - started) / 1000));

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    stopping = true;
    log.info(`${signal}: stopping (waiting for invocations in flight; again to force)`);
    Promise.all([stack.stop(), dashboard?.close()]).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error(`stop failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

main(process.env).catch((error: unknown) => {
  process.stderr.write(`batchline stack failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

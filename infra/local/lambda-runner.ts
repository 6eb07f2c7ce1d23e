// One Lambda invocation in a process of its own (infra/local/process-invoker.ts starts it): loads
// the handler module (a bundle or the TypeScript source), runs it once on the event the parent
// sends over IPC, sends back the result or the error, and exits. The parent may SIGKILL it at any
// moment: then no answer comes back, as with a Lambda sandbox that died.
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";

export type RunnerStart = {
  readonly module: string;
  readonly handler: string;
  readonly functionName: string;
  readonly requestId: string;
  readonly timeoutMs: number;
  readonly memoryMb: number;
  readonly event: unknown;
};

export type RunnerMessage =
  | { readonly kind: "ready" }
  | { readonly kind: "result"; readonly payload: string; readonly maxRssKb: number; readonly cpuMs: number }
  | { readonly kind: "error"; readonly phase: "init" | "invoke"; readonly payload: string; readonly maxRssKb: number; readonly cpuMs: number };

function send(message: RunnerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

function errorPayload(error: unknown): string {
  const e = error instanceof Error ? error : new Error(String(error));
  return JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: (e.stack ?? "").split("\n").slice(1, 11).map((l) => l.trim()) });
}

const maxRssKb = () => process.resourceUsage().maxRSS;
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

process.once("message", (start: RunnerStart) => {
  void run(start).finally(() => {
    // Sockets kept alive by the SDK would keep a finished sandbox up: a Lambda freezes it instead.
    process.exit(0);
  });
});

async function run(start: RunnerStart): Promise<void> {
  let handler: (event: unknown, context: unknown) => Promise<unknown>;
  try {
    const loaded = (await import(pathToFileURL(start.module).href)) as Record<string, unknown>;
    const candidate = loaded[start.handler];
    if (typeof candidate !== "function") throw new TypeError(`${start.module} exports no function ${start.handler}`);
    handler = candidate as typeof handler;
  } catch (error) {
    await send({ kind: "error", phase: "init", payload: errorPayload(error), maxRssKb: maxRssKb(), cpuMs: cpuMs() });
    return;
  }
  await send({ kind: "ready" });
  const deadline = Date.now() + start.timeoutMs;
  const context = {
    callbackWaitsForEmptyEventLoop: false,
    functionName: start.functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${start.functionName}`,
    memoryLimitInMB: String(start.memoryMb),
    awsRequestId: start.requestId || randomUUID(),
    logGroupName: `/aws/lambda/${start.functionName}`,
    logStreamName: `local/${process.pid}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  try {
    const result = await handler(start.event, context);
    await send({ kind: "result", payload: result === undefined ? "null" : JSON.stringify(result), maxRssKb: maxRssKb(), cpuMs: cpuMs() });
  } catch (error) {
    await send({ kind: "error", phase: "invoke", payload: errorPayload(error), maxRssKb: maxRssKb(), cpuMs: cpuMs() });
  }
}

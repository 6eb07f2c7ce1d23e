import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Invoker } from "./event-source-mapping.ts";
import type { InvokeResult } from "./lambda-sqs-event.ts";
import type { RunnerMessage, RunnerStart } from "./lambda-runner.ts";

/**
 * An event source mapping Invoker that runs every invocation in a process of its own, as Lambda
 * runs each in a sandbox: the child (infra/local/lambda-runner.ts) imports the handler module, a
 * bundle or the TypeScript source, runs it once and exits. Unlike serverless-offline's in-process
 * handlers, an invocation can then die for real: past its timeout, past its memory, or when
 * `kill` says so (chaos testing); it then answers like Lambda, with a function error and no
 * response, after whatever partial work it did.
 */

export type LambdaFunction = {
  /** Path of the module that exports the handler: a bundle (.mjs/.js) or TypeScript source. */
  readonly module: string;
  /** Exported name; default "handler". */
  readonly handler?: string;
  /** Lambda's timeout; the handler's context counts down from it. */
  readonly timeoutSeconds: number;
  /** Lambda's memory size: a process whose RSS passes it is killed (Runtime.OutOfMemory). Default 1024. */
  readonly memoryMb?: number;
};

export type InvocationOutcome = "ok" | "error" | "init-error" | "timeout" | "killed" | "out-of-memory" | "crashed";

export type InvocationReport = {
  readonly functionName: string;
  readonly requestId: string;
  readonly pid: number | undefined;
  readonly records: number;
  readonly outcome: InvocationOutcome;
  /** From the start of the process to its exit. */
  readonly durationMs: number;
  /** Loading the handler module (Lambda's init phase). */
  readonly initMs: number | undefined;
  /** The largest resident set seen, by sampling /proc and from the process's own report; 0 when neither was available. */
  readonly peakRssBytes: number;
  /** CPU time (user + system), from the process's own report or, for one that died, the last sample of /proc. */
  readonly cpuMs: number;
};

export type ProcessInvokerOptions = {
  /** By the name the event source mapping invokes (`<service>-<stage>-<function>`). */
  readonly functions: Readonly<Record<string, LambdaFunction>>;
  /** The functions' environment, awaited at each invocation (the stack's functionEnv is known once it has started). */
  readonly env: () => Readonly<Record<string, string>> | Promise<Readonly<Record<string, string>>>;
  /**
   * When to SIGKILL this invocation, asked once its handler starts: after this many milliseconds,
   * or when the promise resolves (e.g. on something the handler was seen doing: a kill that is
   * sure to land mid-work, however fast the handler is); undefined: let it run. `ended` aborts
   * when the invocation ends, however it ends, so a caller can stop watching for it. An
   * invocation that has answered is no longer killed.
   */
  readonly kill?: (invocation: KillQuestion) => number | Promise<unknown> | undefined;
  /** Every finished invocation, whatever its outcome. */
  readonly onInvocation?: (report: InvocationReport) => void;
  /** The children's stdout and stderr (handler logs); default dropped. */
  readonly onOutput?: (functionName: string, chunk: string) => void;
  /** Longest a module may take to load (Lambda gives 10 s; a loaded machine needs more). Default 30 s. */
  readonly initTimeoutMs?: number;
  /** How often RSS is sampled from /proc; default 100 ms. */
  readonly rssSampleMs?: number;
  readonly execArgv?: readonly string[];
};

export type KillQuestion = {
  readonly functionName: string;
  readonly records: number;
  readonly event: { readonly Records: readonly unknown[] };
  readonly ended: AbortSignal;
};

export type ProcessInvoker = {
  readonly invoke: Invoker;
  /** Invocations running now. */
  running(): number;
  /** SIGKILLs every invocation still running (their pollers see function errors). */
  killAll(): void;
};

const RUNNER = fileURLToPath(new URL("./lambda-runner.ts", import.meta.url));

export function processInvoker(options: ProcessInvokerOptions): ProcessInvoker {
  const children = new Set<ChildProcess>();
  const invoke: Invoker = async (functionName, event) => {
    const fn = options.functions[functionName];
    if (!fn) throw new Error(`process invoker: no function ${functionName} (known: ${Object.keys(options.functions).join(", ")})`);
    const env = await options.env();
    const result = await runOnce(options, functionName, fn, env, event, children);
    options.onInvocation?.(result.report);
    return result.invoke;
  };
  return {
    invoke,
    running: () => children.size,
    killAll: () => {
      for (const child of children) child.kill("SIGKILL");
    },
  };
}

function runOnce(
  options: ProcessInvokerOptions,
  functionName: string,
  fn: LambdaFunction,
  env: Readonly<Record<string, string>>,
  event: { readonly Records: readonly unknown[] },
  children: Set<ChildProcess>,
): Promise<{ invoke: InvokeResult; report: InvocationReport }> {
  const requestId = randomUUID();
  const memoryMb = fn.memoryMb ?? 1024;
  const started = performance.now();
  const child = fork(RUNNER, [], {
    env: { ...env, AWS_LAMBDA_FUNCTION_NAME: functionName, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb) },
    execArgv: [...(options.execArgv ?? [])],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    serialization: "json",
  });
  children.add(child);
  const onOutput = options.onOutput;
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => onOutput?.(functionName, chunk));
  }

  let peakKb = 0;
  let cpuMs = 0;
  let answer: RunnerMessage | undefined;
  let ending: InvocationOutcome | undefined;
  let initMs: number | undefined;
  const timers: NodeJS.Timeout[] = [];
  const ended = new AbortController();
  const end = (outcome: InvocationOutcome) => {
    // Past its answer the handler is done: the process exits on its own.
    if (ended.signal.aborted || answer !== undefined) return;
    ending ??= outcome;
    child.kill("SIGKILL");
  };
  const sampleRss = async () => {
    if (child.pid === undefined || child.exitCode !== null) return;
    const [status, stat] = await Promise.all([readFile(`/proc/${child.pid}/status`, "utf8").catch(() => ""), readFile(`/proc/${child.pid}/stat`, "utf8").catch(() => "")]);
    cpuMs = Math.max(cpuMs, procCpuMs(stat));
    const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    peakKb = Math.max(peakKb, hwm, rss);
    if (rss > memoryMb * 1024) end("out-of-memory");
  };
  const sampler = setInterval(() => void sampleRss(), options.rssSampleMs ?? 100);
  timers.push(setTimeout(() => end("timeout"), options.initTimeoutMs ?? 30_000));

  child.on("message", (message: RunnerMessage) => {
    if (message.kind === "ready") {
      initMs = performance.now() - started;
      for (const t of timers.splice(0)) clearTimeout(t);
      timers.push(setTimeout(() => end("timeout"), fn.timeoutSeconds * 1000));
      const killAt = options.kill?.({ functionName, records: event.Records.length, event, ended: ended.signal });
      if (typeof killAt === "number") timers.push(setTimeout(() => end("killed"), Math.max(0, killAt)));
      else killAt?.then(() => end("killed"), () => undefined);
      return;
    }
    if (ending === undefined) answer = message;
    peakKb = Math.max(peakKb, message.maxRssKb);
    cpuMs = Math.max(cpuMs, message.cpuMs);
  });

  const start: RunnerStart = { module: fn.module, handler: fn.handler ?? "handler", functionName, requestId, timeoutMs: fn.timeoutSeconds * 1000, memoryMb, event };
  // A child that died at once closed the channel: its exit says so.
  child.send(start, (error) => void error);

  return new Promise((resolve) => {
    let settled = false;
    const settle = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      ended.abort();
      clearInterval(sampler);
      for (const t of timers) clearTimeout(t);
      children.delete(child);
      const durationMs = performance.now() - started;
      const outcome: InvocationOutcome =
        ending ?? (answer?.kind === "result" ? "ok" : answer?.kind === "error" ? (answer.phase === "init" ? "init-error" : "error") : "crashed");
      const report: InvocationReport = { functionName, requestId, pid: child.pid, records: event.Records.length, outcome, durationMs, initMs, peakRssBytes: peakKb * 1024, cpuMs };
      resolve({ invoke: invokeResult(outcome, answer, requestId, fn, code, signal), report });
    };
    child.once("exit", settle);
    // The process could not start at all (no 'exit' follows then).
    child.on("error", () => {
      if (child.pid === undefined) settle(null, null);
    });
  });
}

/** What Lambda's Invoke answers for each way an invocation can end. */
function invokeResult(
  outcome: InvocationOutcome,
  answer: RunnerMessage | undefined,
  requestId: string,
  fn: LambdaFunction,
  code: number | null,
  signal: NodeJS.Signals | null,
): InvokeResult {
  const failure = (errorType: string, errorMessage: string): InvokeResult => ({ functionError: "Unhandled", payload: JSON.stringify({ errorType, errorMessage }) });
  switch (outcome) {
    case "ok":
      return { functionError: undefined, payload: answer?.kind === "result" ? answer.payload : "null" };
    case "error":
    case "init-error":
      return { functionError: "Unhandled", payload: answer?.kind === "error" ? answer.payload : "{}" };
    case "timeout":
      return failure("Sandbox.Timedout", `RequestId: ${requestId} Error: Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`);
    case "out-of-memory":
      return failure("Runtime.OutOfMemory", `RequestId: ${requestId} Error: Runtime exited with error: signal: killed`);
    case "killed":
    case "crashed":
      return failure("Runtime.ExitError", `RequestId: ${requestId} Error: Runtime exited with error: ${signal ? `signal: ${signal === "SIGKILL" ? "killed" : signal}` : `exit status ${code}`}`);
  }
}

/** User + system CPU of a /proc/<pid>/stat line, in ms (Linux counts in 100 Hz ticks); 0 when unreadable. */
export function procCpuMs(stat: string): number {
  // The command name (2nd field) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  return Number.isFinite(ticks) ? ticks * 10 : 0;
}

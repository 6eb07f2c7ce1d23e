import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import type { Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { oslsCommand, oslsEnv, scratchService } from "./osls.ts";
import { assertPortFree, isListening } from "./ports.ts";

export type OfflinePorts = { readonly http: number; readonly websocket: number; readonly lambda: number };

export type OfflineOptions = {
  readonly projectDir: string;
  readonly stage: string;
  /** Concrete ports: serverless-offline cannot pick free ones itself. */
  readonly ports: OfflinePorts;
  /** Added to this process's environment (which the handlers inherit). */
  readonly env: Readonly<Record<string, string>>;
  readonly readyTimeoutMs?: number;
  /** Everything the child prints (handler logs included), as it comes. */
  readonly onOutput?: (chunk: string) => void;
};

export type RunningOffline = {
  readonly pid: number;
  /** Settles when the child has exited; `expected` is false when it was not asked to stop. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; expected: boolean }>;
  /** SIGINT to its process group, then SIGKILL if it is still there after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
};

const OUTPUT_KEPT = 16_384;

/**
 * `osls offline start` as a child in its own process group: a Ctrl-C in the terminal reaches
 * only us, and we stop offline after the pollers have finished their invocations. Ready when
 * its HTTP, WebSocket and Lambda ports all accept connections.
 */
export async function startOffline(options: OfflineOptions): Promise<RunningOffline> {
  const { ports } = options;
  // Checked first: offline failing to bind while another server answers on its port would look ready.
  await assertPortFree(ports.http, "HTTP API");
  await assertPortFree(ports.websocket, "WebSocket API");
  await assertPortFree(ports.lambda, "Lambda");

  // --localEnvironment: without it serverless-offline hands the handlers only AWS_* variables.
  const { command, args } = oslsCommand(["offline", "start", "--stage", options.stage, "--localEnvironment"]);
  // Its own copy of the project, so its own `.esbuild`: see scratchService.
  const service = await scratchService(options.projectDir);
  const child = spawn(command, args, {
    cwd: service.dir,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: oslsEnv({
      ...options.env,
      BATCHLINE_HTTP_PORT: String(ports.http),
      BATCHLINE_WS_PORT: String(ports.websocket),
      BATCHLINE_LAMBDA_PORT: String(ports.lambda),
    }),
  });
  const pid = child.pid;
  if (pid === undefined) {
    await service.remove();
    throw new Error(`cannot start osls offline: ${await once(child, "error").then(String)}`);
  }

  let output = "";
  const collect = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    output = (output + text).slice(-OUTPUT_KEPT);
    options.onOutput?.(text);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const watchdog = startWatchdog(pid, service.dir);

  const stop = async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      signalGroup(pid, "SIGINT");
      const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    }
    // The esbuild service it started may linger a moment after its parent.
    signalGroup(pid, "SIGTERM");
    watchdog.kill("SIGKILL");
    await service.remove();
  };

  try {
    await waitUntilReady(child, exited, ports, options.readyTimeoutMs ?? 120_000);
  } catch (error) {
    await stop(2_000);
    throw new Error(`${(error as Error).message}\n--- osls offline output ---\n${output.trim()}`);
  }
  let stopping = false;
  return {
    pid,
    exited: exited.then(([code, signal]) => ({ code, signal, expected: stopping })),
    stop: (graceMs) => {
      stopping = true;
      return stop(graceMs);
    },
  };
}

async function waitUntilReady(
  child: ChildProcess,
  exited: Promise<[number | null, NodeJS.Signals | null]>,
  ports: OfflinePorts,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const died = exited.then(([code, signal]) => {
    throw new Error(`osls offline exited before it was ready (${signal ?? `exit ${code}`})`);
  });
  died.catch(() => undefined);
  const all = [ports.http, ports.websocket, ports.lambda];
  while (true) {
    const listening = await Promise.race([Promise.all(all.map((p) => isListening(p))), died]);
    if (listening.every(Boolean)) return;
    if (child.exitCode !== null || child.signalCode !== null) await died;
    if (Date.now() > deadline) throw new Error(`osls offline not ready after ${timeoutMs} ms`);
    await Promise.race([delay(100), died]);
  }
}

/**
 * A detached group outlives us if we die without stopping it, even by SIGKILL. This small child
 * stays in our own group, ignores the signals a terminal sends it, and when its stdin (our end
 * of a pipe) closes, because we are gone, kills the offline group and removes its scratch copy.
 */
function startWatchdog(pgid: number, dir: string): ChildProcess {
  const script = `
    for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(s, () => {});
    process.stdin.on("end", () => {
      try { process.kill(-${pgid}, "SIGKILL"); } catch {}
      require("node:fs").rmSync(${JSON.stringify(dir)}, { recursive: true, force: true });
      process.exit(0);
    });
    process.stdin.resume();`;
  const watchdog = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "ignore", "ignore"] });
  // It must not keep us alive; it only needs to notice when we are gone.
  watchdog.unref();
  (watchdog.stdin as Socket | null)?.unref();
  return watchdog;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

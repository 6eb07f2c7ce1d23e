import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { StoreKind, StoreServerCommand, StoreServerMessage, StoreServerStart } from "./store-server.ts";

const SERVER = fileURLToPath(new URL("./store-server.ts", import.meta.url));
/** Loading fauxqs or dynalite and opening the data file; a loaded 2-core machine needs seconds. */
const START_TIMEOUT_MS = 30_000;
/** How long a SIGTERMed store gets to close its files. */
const CLOSE_GRACE_MS = 10_000;

/** A store's process seen from the stack: kill it as a crash would, start it again on the same port and data. */
export type StoreControl = {
  readonly kind: StoreKind;
  /** Whether a process serves the store now (false between kill and restart). */
  readonly running: boolean;
  /** SIGKILL, no warning: what the store had not written to disk is gone. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** A new process on the same port and data folder; resolves once it listens. */
  restart(): Promise<void>;
};

/** The store's server, as LocalSqs and LocalDynamoDb are (same members), plus its control. */
export type StoreProcess = StoreControl & {
  readonly url: string;
  readonly port: number;
  wakeReceivers(): void;
  /** SIGTERM: the store closes its files cleanly. */
  close(): Promise<void>;
};

/**
 * fauxqs or dynalite in a child process (infra/local/store-server.ts) on `dataDir`, so that a chaos
 * run can SIGKILL it mid-run and bring it back on what it had persisted.
 */
export async function startStoreProcess(kind: StoreKind, options: { readonly host: string; readonly port: number; readonly dataDir: string }): Promise<StoreProcess> {
  let child: ChildProcess | undefined;
  const first = await spawnStore({ kind, ...options });
  child = first.child;
  const port = first.port;
  const stopChild = async (signal: NodeJS.Signals) => {
    const current = child;
    child = undefined;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = once(current, "exit");
    current.kill(signal);
    // A store that does not close in time (a socket held open) is killed all the same.
    const stubborn = setTimeout(() => current.kill("SIGKILL"), CLOSE_GRACE_MS);
    await exited;
    clearTimeout(stubborn);
  };
  return {
    kind,
    url: `http://${options.host}:${port}`,
    port,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    wakeReceivers() {
      if (child?.connected) child.send({ kind: "wake-receivers" } satisfies StoreServerCommand);
    },
    kill: () => stopChild("SIGKILL"),
    async restart() {
      if (child) throw new Error(`the ${kind} store is running: kill it before restarting it`);
      child = (await spawnStore({ kind, host: options.host, port, dataDir: options.dataDir })).child;
    },
    close: () => stopChild("SIGTERM"),
  };
}

async function spawnStore(start: StoreServerStart): Promise<{ child: ChildProcess; port: number }> {
  // None of our execArgv (a test runner's loaders): plain node, without node:sqlite's warning on every start.
  const child = fork(SERVER, [JSON.stringify(start)], { execArgv: ["--disable-warning=ExperimentalWarning"], stdio: ["ignore", "ignore", "inherit", "ipc"], serialization: "json" });
  const answer = await new Promise<StoreServerMessage>((resolve) => {
    const timer = setTimeout(() => resolve({ kind: "failed", error: `no answer in ${START_TIMEOUT_MS / 1000} s` }), START_TIMEOUT_MS);
    const settle = (message: StoreServerMessage) => {
      clearTimeout(timer);
      child.off("message", settle);
      child.off("exit", exited);
      resolve(message);
    };
    const exited = (code: number | null, signal: NodeJS.Signals | null) => settle({ kind: "failed", error: `exited (${signal ?? `code ${code}`})` });
    child.on("message", settle);
    child.on("exit", exited);
  });
  if (answer.kind === "failed") {
    child.kill("SIGKILL");
    throw new Error(`the ${start.kind} store did not start on port ${start.port}: ${answer.error}`);
  }
  return { child, port: answer.port };
}

import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "#local/ports";

export type StackProcess = {
  readonly child: ChildProcess;
  readonly http: string;
  readonly ws: string;
  readonly dynamodb: string;
  readonly sagemaker: string;
  /** The live dashboard's page (a static site on a port of its own). */
  readonly dashboard: string;
  output(): string;
  /** Ctrl-C, and the exit code once it has stopped. */
  interrupt(timeoutMs?: number): Promise<number | null>;
};

export type StackSettings = { readonly stage: string; readonly dataDir: string; readonly apiKey: string };

/** Picks free ports for every part, once: a restart reuses them as `npm start` would. */
export async function stackPorts(): Promise<Record<string, string>> {
  const names = ["SQS", "DYNAMODB", "SAGEMAKER", "HTTP", "WS", "LAMBDA", "DASHBOARD"];
  const ports = await Promise.all(names.map(() => freePort()));
  return Object.fromEntries(names.map((n, i) => [`BATCHLINE_${n}_PORT`, String(ports[i])]));
}

/**
 * Starts the stack exactly as `npm start` does (infra/local/start.ts on this Node 22), and waits
 * for its ready banner.
 */
export async function startStackProcess(settings: StackSettings, ports: Record<string, string>, readyTimeoutMs = 150_000): Promise<StackProcess> {
  const child = spawn(process.execPath, ["infra/local/start.ts"], {
    env: {
      ...process.env,
      ...ports,
      BATCHLINE_STAGE: settings.stage,
      BATCHLINE_DATA_DIR: settings.dataDir,
      BATCHLINE_API_KEY: settings.apiKey,
      BATCHLINE_LOG_LEVEL: "WARN",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stack not ready after ${readyTimeoutMs} ms:\n${output}`)), readyTimeoutMs);
    const check = () => {
      if (/ready in [\d.]+ s/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`stack exited with ${code} before it was ready:\n${output}`));
    });
  });

  const port = (name: string) => ports[`BATCHLINE_${name}_PORT`];
  return {
    child,
    http: `http://127.0.0.1:${port("HTTP")}`,
    ws: `ws://127.0.0.1:${port("WS")}`,
    dynamodb: `http://127.0.0.1:${port("DYNAMODB")}`,
    sagemaker: `http://127.0.0.1:${port("SAGEMAKER")}`,
    dashboard: `http://127.0.0.1:${port("DASHBOARD")}/`,
    output: () => output,
    interrupt: async (timeoutMs = 60_000) => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

import { spawn } from "node:child_process";

export type CliRun = { readonly code: number | null; readonly stdout: string; readonly stderr: string };

/** Runs `batchline ARGS` (tools/cli/main.ts) in a process of its own with `env` over this one's, and gathers what it printed. */
export function runCli(args: readonly string[], env: Readonly<Record<string, string>>): Promise<CliRun> {
  const child = spawn(process.execPath, ["tools/cli/main.ts", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr })));
}

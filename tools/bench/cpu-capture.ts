import { readdir, readFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import type { CpuProfile } from "./cpu-profile.ts";

/**
 * CPU profiles of the stack's processes while the bench drives it: this process (the in-process
 * stores, SageMaker emulator, pollers, front door and the bench's own clients) through the
 * inspector, and osls offline (the HTTP and WebSocket APIs and the functions, in process) through
 * `node --cpu-prof`, which writes its profile when it exits.
 */

/** Now on the clock V8's profiles use (CLOCK_MONOTONIC), µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Profiles this process from now until `stop`. */
export async function profileThisProcess(): Promise<{ stop(): Promise<CpuProfile> }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return {
    stop: async () => {
      try {
        const { profile } = await session.post("Profiler.stop");
        return profile as CpuProfile;
      } finally {
        session.disconnect();
      }
    },
  };
}

/** NODE_OPTIONS that make a Node process write its CPU profile into `dir` when it exits, on top of this process's own. */
export function cpuProfNodeOptions(dir: string): string {
  return [process.env.NODE_OPTIONS, "--cpu-prof", `--cpu-prof-dir=${dir}`].filter(Boolean).join(" ");
}

/** The profiles `--cpu-prof` wrote into `dir`, named by their process id (CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile). */
export async function readProfiles(dir: string): Promise<{ name: string; profile: CpuProfile }[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".cpuprofile"));
  return Promise.all(
    files.map(async (file) => {
      const [, , , pid, tid] = file.split(".");
      return { name: `pid ${pid ?? "?"}${tid && tid !== "0" ? ` thread ${tid}` : ""}`, profile: JSON.parse(await readFile(join(dir, file), "utf8")) as CpuProfile };
    }),
  );
}

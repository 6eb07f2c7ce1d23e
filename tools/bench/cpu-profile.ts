/**
 * Where a process's CPU went, from a V8 CPU profile (node --cpu-prof, or the inspector's
 * Profiler): self time by function and by package, over a window of the profile's own clock
 * (CLOCK_MONOTONIC in µs, as process.hrtime gives: the bench lines a ramp step up with it).
 * Pure: capturing is cpu-capture.ts's.
 */
export type CpuProfile = {
  readonly nodes: readonly { readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number } }[];
  /** µs, monotonic. */
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
};

export type SelfTime = { readonly name: string; readonly ms: number; readonly share: number };

export type ProfileSummary = {
  readonly process: string;
  /** The window the samples were taken in, ms (the profile's span where no window is given). */
  readonly window_ms: number;
  /** Sampled time not idle: on the CPU, in V8's (program) or its garbage collector. */
  readonly busy_ms: number;
  /** busy_ms over window_ms: 1 is one core the whole window. */
  readonly cpu_share: number;
  /** Largest first; share is of busy_ms. */
  readonly functions: readonly SelfTime[];
  readonly packages: readonly SelfTime[];
};

const IDLE = "(idle)";

/** `node_modules/<package>/...` as its package (scoped too); the project's own files as "batchline"; V8's own entries as themselves. */
export function packageOf(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  const at = url.lastIndexOf("node_modules/");
  if (at < 0) return url.startsWith("node:") ? "node" : "batchline";
  const [first, second] = url.slice(at + "node_modules/".length).split("/");
  return first?.startsWith("@") && second ? `${first}/${second}` : (first ?? "batchline");
}

/** A function's name with where it is: the last two parts of its file's path, and its line. */
export function functionLabel(functionName: string, url: string, lineNumber: number): string {
  const name = functionName === "" ? "(anonymous)" : functionName;
  if (url === "") return name;
  const parts = url.replace(/^file:\/\//, "").split("/");
  return `${name} ${parts.slice(-2).join("/")}:${lineNumber + 1}`;
}

/**
 * Self time by function and package over [fromUs, toUs) of the profile's clock (default: all of
 * it). A sample lasts until the next one (the last, until the profile's end).
 */
export function summarizeProfile(process: string, profile: CpuProfile, options: { fromUs?: number; toUs?: number; top?: number } = {}): ProfileSummary {
  const fromUs = Math.max(options.fromUs ?? profile.startTime, profile.startTime);
  const toUs = Math.min(options.toUs ?? profile.endTime, profile.endTime);
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let busyUs = 0;
  let at = profile.startTime;
  for (const [i, id] of samples.entries()) {
    at += deltas[i] ?? 0;
    const until = i + 1 < samples.length ? at + (deltas[i + 1] ?? 0) : profile.endTime;
    // The part of the sample's span inside the window.
    const us = Math.min(until, toUs) - Math.max(at, fromUs);
    const frame = byId.get(id);
    if (!(us > 0) || !frame || frame.functionName === IDLE) continue;
    busyUs += us;
    const label = functionLabel(frame.functionName, frame.url, frame.lineNumber);
    byFunction.set(label, (byFunction.get(label) ?? 0) + us);
    const pkg = packageOf(frame.url, frame.functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
  }
  const windowUs = Math.max(0, toUs - fromUs);
  const top = (m: Map<string, number>) =>
    [...m]
      .toSorted((a, b) => b[1] - a[1])
      .slice(0, options.top ?? 10)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return { process, window_ms: windowUs / 1000, busy_ms: busyUs / 1000, cpu_share: windowUs > 0 ? busyUs / windowUs : 0, functions: top(byFunction), packages: top(byPackage) };
}

/** The processes busiest first: the top of where a machine's CPU went. */
export function busiestFirst(summaries: readonly ProfileSummary[]): ProfileSummary[] {
  return summaries.toSorted((a, b) => b.busy_ms - a.busy_ms);
}

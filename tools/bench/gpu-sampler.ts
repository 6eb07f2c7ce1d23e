import { gpuSnapshot, type GpuSnapshot } from "./gpu.ts";

/** A snapshot and when it was taken (performance.now()). */
export type TimedSnapshot = GpuSnapshot & { readonly atMs: number };

/** Snapshots of the GPU every `everyMs` until stopped. */
export function sampleGpu(sagemakerUrl: string, component: string, everyMs = 1000) {
  const samples: TimedSnapshot[] = [];
  let stopped = false;
  const take = async () => {
    const snapshot = await gpuSnapshot(sagemakerUrl, component);
    samples.push({ ...snapshot, atMs: performance.now() });
  };
  const loop = (async () => {
    while (!stopped) {
      await take().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    samples,
    /** Takes a last snapshot and stops. */
    async stop(): Promise<TimedSnapshot[]> {
      stopped = true;
      await loop;
      await take();
      return samples;
    },
  };
}

/** The snapshot taken closest to `atMs`. */
export function nearest(samples: readonly TimedSnapshot[], atMs: number): TimedSnapshot | undefined {
  let best: TimedSnapshot | undefined;
  for (const s of samples) if (!best || Math.abs(s.atMs - atMs) < Math.abs(best.atMs - atMs)) best = s;
  return best;
}

/**
 * The emulator's clock (nowMs) at `atMs` (performance.now()), interpolated between the snapshots
 * around it (extrapolated at the wall's pace beyond the first or last).
 */
export function simulatedClockAt(samples: readonly TimedSnapshot[], atMs: number): number {
  const after = samples.findIndex((s) => s.atMs >= atMs);
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last) return atMs;
  if (after === 0) return first.nowMs - (first.atMs - atMs);
  if (after < 0) return last.nowMs + (atMs - last.atMs);
  const b = samples[after] as TimedSnapshot;
  const a = samples[after - 1] as TimedSnapshot;
  return b.atMs === a.atMs ? b.nowMs : a.nowMs + ((b.nowMs - a.nowMs) * (atMs - a.atMs)) / (b.atMs - a.atMs);
}

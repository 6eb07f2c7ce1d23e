/**
 * What the SageMaker emulator says about the simulated GPU (GET /_emulator/stats), reduced to
 * the few totals the bench needs, so that a window of time is the difference of two snapshots.
 * Read through the endpoint, as any tool would; tolerant of the fields an emulator version has.
 */
export type GpuSnapshot = {
  /** The emulator's simulated clock, ms. */
  readonly nowMs: number;
  /** Simulated ms the copies spent computing, summed over copies. */
  readonly busyMs: number;
  /** Sequence-ms: sequences in the running batch × iteration time, summed (mean batch = this / busyMs). */
  readonly sequenceMs: number;
  readonly tokensGenerated: number;
  /** Requests the copies hold (running or queued in the container). */
  readonly outstanding: number;
  readonly copies: number;
};

type CopyStatsLike = {
  busyMs?: number;
  tokensGenerated?: number;
  /** Continuous engine: time-weighted mean batch. */
  batchSize?: { mean?: number };
  /** Static engine: sequences per batch. */
  meanBatchSize?: number;
  concurrentRequests?: number;
  outstanding?: number;
  queueLength?: number;
};

type StatsLike = { nowMs?: number; components?: { component: string; copies?: CopyStatsLike[] }[] };

export async function gpuSnapshot(sagemakerUrl: string, component: string): Promise<GpuSnapshot> {
  const response = await fetch(`${sagemakerUrl}/_emulator/stats`);
  if (!response.ok) throw new Error(`GET /_emulator/stats: ${response.status}`);
  return snapshotOf((await response.json()) as StatsLike, component);
}

export function snapshotOf(stats: StatsLike, component: string): GpuSnapshot {
  const found = stats.components?.find((c) => c.component === component);
  if (!found) throw new Error(`the emulator has no component ${component}`);
  const copies = found.copies ?? [];
  const sum = (f: (c: CopyStatsLike) => number) => copies.reduce((total, c) => total + f(c), 0);
  return {
    nowMs: stats.nowMs ?? 0,
    busyMs: sum((c) => c.busyMs ?? 0),
    sequenceMs: sum((c) => (c.busyMs ?? 0) * (c.batchSize?.mean ?? c.meanBatchSize ?? 0)),
    tokensGenerated: sum((c) => c.tokensGenerated ?? 0),
    outstanding: sum((c) => c.concurrentRequests ?? c.outstanding ?? 0),
    copies: copies.length,
  };
}

/** What the GPU did between two snapshots. */
export type GpuWindow = { readonly busyFraction: number; readonly meanBatch: number; readonly tokens: number; readonly simMs: number };

export function gpuWindow(before: GpuSnapshot, after: GpuSnapshot): GpuWindow {
  const simMs = Math.max(0, after.nowMs - before.nowMs);
  const busyMs = Math.max(0, after.busyMs - before.busyMs);
  const copies = Math.max(1, after.copies);
  return {
    simMs,
    busyFraction: simMs === 0 ? 0 : Math.min(1, busyMs / (simMs * copies)),
    meanBatch: busyMs === 0 ? 0 : (after.sequenceMs - before.sequenceMs) / busyMs,
    tokens: after.tokensGenerated - before.tokensGenerated,
  };
}

/**
 * A copy's life on its GPUs, and what follows from the lives of a component's copies: the
 * instance time AWS bills and the copy counts over time, for a bench's cost and a dashboard.
 */
export type CopyLifecycle = {
  /** When the copy took its GPUs (scale-out asked for it; the instance runs and is billed from here). */
  readonly placedAtMs: number;
  /** When its warm-up ends and it serves. */
  readonly readyAtMs: number;
  /** When scale-in stopped routing to it. */
  readonly drainingSinceMs: number | undefined;
  /** When it gave its GPUs back, having answered all it held. */
  readonly goneAtMs: number | undefined;
};

/** Simulated ms the copies held their GPUs up to `nowMs`: warming and draining count, as AWS bills the instance. */
export function billedCopyMs(copies: readonly CopyLifecycle[], nowMs: number): number {
  return copies.reduce((sum, c) => sum + Math.max(0, Math.min(c.goneAtMs ?? nowMs, nowMs) - c.placedAtMs), 0);
}

/** The component's copies at one instant. */
export type CopyCounts = {
  readonly atMs: number;
  /** Holding GPUs: warming, serving or draining. */
  readonly placed: number;
  /** Ready and taking requests. */
  readonly serving: number;
  /** Serving or warming: DesiredCopyCount. */
  readonly desired: number;
};

const before = (ms: number | undefined, atMs: number) => ms !== undefined && ms <= atMs;

export function copyCountsAt(copies: readonly CopyLifecycle[], atMs: number): CopyCounts {
  const placed = copies.filter((c) => c.placedAtMs <= atMs && !before(c.goneAtMs, atMs));
  const desired = placed.filter((c) => !before(c.drainingSinceMs, atMs));
  return { atMs, placed: placed.length, serving: desired.filter((c) => c.readyAtMs <= atMs).length, desired: desired.length };
}

/** The counts at every instant one of them changed, up to `nowMs`, oldest first. */
export function copyCountSeries(copies: readonly CopyLifecycle[], nowMs: number): CopyCounts[] {
  const instants = new Set<number>([0]);
  for (const c of copies) {
    for (const ms of [c.placedAtMs, c.readyAtMs, c.drainingSinceMs, c.goneAtMs]) if (ms !== undefined && ms <= nowMs) instants.add(ms);
  }
  const series: CopyCounts[] = [];
  for (const atMs of [...instants].sort((a, b) => a - b)) {
    const counts = copyCountsAt(copies, atMs);
    const last = series.at(-1);
    if (!last || last.placed !== counts.placed || last.serving !== counts.serving || last.desired !== counts.desired) series.push(counts);
  }
  return series;
}

import type { EngineClock } from "#shared/sim/engine-clock";

export type { EngineClock } from "#shared/sim/engine-clock";

/**
 * Simulated time over the wall clock: `timeScale` simulated ms pass per wall ms. Timers re-arm
 * when they fire early (Node may fire a timer up to a millisecond early by performance.now()),
 * so a loaded machine can add delay but never remove it.
 */
export function scaledClock(timeScale: number): EngineClock & { dispose(): void } {
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new RangeError(`timeScale must be a positive number, got ${timeScale}`);
  const origin = performance.now();
  const handles = new Set<NodeJS.Timeout>();
  const now = () => (performance.now() - origin) * timeScale;

  return {
    now,
    setTimer(fn, delayMs) {
      const dueMs = now() + Math.max(0, delayMs);
      let handle: NodeJS.Timeout;
      const arm = (simMs: number) => {
        handle = setTimeout(fire, simMs / timeScale);
        handles.add(handle);
      };
      const fire = () => {
        handles.delete(handle);
        const leftMs = dueMs - now();
        if (leftMs > 0) arm(leftMs);
        else fn();
      };
      arm(Math.max(0, delayMs));
      return () => {
        clearTimeout(handle);
        handles.delete(handle);
      };
    },
    dispose() {
      for (const handle of handles) clearTimeout(handle);
      handles.clear();
    },
  };
}

import type { EngineClock } from "#local/sagemaker/clock";

/**
 * Simulated time that moves only when the test says so; due timers run in time order (then in
 * the order they were set), each followed by a turn of the event loop so that promises settle.
 */
export function manualClock() {
  type Timer = { atMs: number; order: number; fn: () => void; live: boolean };
  let nowMs = 0;
  let order = 0;
  const timers: Timer[] = [];
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  const clock: EngineClock = {
    now: () => nowMs,
    setTimer(fn, delayMs) {
      const timer = { atMs: nowMs + Math.max(0, delayMs), order: order++, fn, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
  };
  async function advanceTo(targetMs: number): Promise<void> {
    for (;;) {
      const due = timers.filter((t) => t.live && t.atMs <= targetMs).sort((a, b) => a.atMs - b.atMs || a.order - b.order)[0];
      if (!due) break;
      timers.splice(timers.indexOf(due), 1);
      nowMs = Math.max(nowMs, due.atMs);
      due.fn();
      await settle();
    }
    nowMs = Math.max(nowMs, targetMs);
    await settle();
  }
  return { clock, advanceTo, runAll: () => advanceTo(Number.POSITIVE_INFINITY), now: () => nowMs };
}

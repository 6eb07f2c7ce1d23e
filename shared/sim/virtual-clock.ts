import type { EngineClock } from "./engine-clock.ts";

/**
 * Discrete-event time: timers fire in order of their due time (ties in the order they were set),
 * and time jumps straight to the next one. Deterministic: the same timers give the same run.
 */
export type VirtualClock = EngineClock & {
  /** Fires due timers in order until none is left or the next is past `untilMs`; returns how many fired. */
  run(untilMs?: number): number;
  /** Timers still pending. */
  pending(): number;
};

type Timer = { readonly dueMs: number; readonly seq: number; readonly fn: () => void; cancelled: boolean };

/** A binary min-heap on (dueMs, seq): a trace of thousands of jobs sets millions of timers. */
class TimerHeap {
  readonly #items: Timer[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Timer | undefined {
    return this.#items[0];
  }

  push(timer: Timer): void {
    const items = this.#items;
    items.push(timer);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i] as Timer, items[parent] as Timer)) break;
      [items[i], items[parent]] = [items[parent] as Timer, items[i] as Timer];
      i = parent;
    }
  }

  pop(): Timer | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || !last) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < items.length && before(items[left] as Timer, items[least] as Timer)) least = left;
      if (right < items.length && before(items[right] as Timer, items[least] as Timer)) least = right;
      if (least === i) return top;
      [items[i], items[least]] = [items[least] as Timer, items[i] as Timer];
      i = least;
    }
  }
}

const before = (a: Timer, b: Timer) => a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq);

export function virtualClock(startMs = 0): VirtualClock {
  const heap = new TimerHeap();
  let nowMs = startMs;
  let seq = 0;
  let live = 0;
  return {
    now: () => nowMs,
    setTimer(fn, delayMs) {
      const timer: Timer = { dueMs: nowMs + Math.max(0, delayMs), seq: seq++, fn, cancelled: false };
      heap.push(timer);
      live++;
      return () => {
        if (timer.cancelled) return;
        timer.cancelled = true;
        live--;
      };
    },
    run(untilMs = Number.POSITIVE_INFINITY) {
      let fired = 0;
      for (let next = heap.peek(); next && next.dueMs <= untilMs; next = heap.peek()) {
        heap.pop();
        if (next.cancelled) continue;
        next.cancelled = true;
        live--;
        nowMs = next.dueMs;
        next.fn();
        fired++;
      }
      if (untilMs !== Number.POSITIVE_INFINITY) nowMs = Math.max(nowMs, untilMs);
      return fired;
    },
    pending: () => live,
  };
}

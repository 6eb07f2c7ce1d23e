import type { Clock, Sleep } from "#shared/ports";

type Sleeper = { readonly atMs: number; readonly order: number; readonly resolve: () => void };

/**
 * Virtual time for the Clock and Sleep ports together. It moves only when every in-memory task is
 * waiting on a sleep: the earliest sleeper then wakes with the clock at its time, so a loop that
 * waits 5 virtual seconds takes no real time, and what it does at each instant is reproducible.
 * Work outside the fakes (real I/O, a gate the test holds) must be announced with `holdWhile`,
 * or time would run on while it is pending.
 */
export class FakeTime implements Clock {
  #nowMs: number;
  #order = 0;
  #holds = 0;
  #scheduled = false;
  readonly #sleepers: Sleeper[] = [];
  // Private behind a getter, so that a test comparing the fakes' state before and after sees none.
  readonly #sleeps: { readonly atMs: number; readonly ms: number }[] = [];

  constructor(startIso = "2026-11-27T12:00:00.000Z") {
    this.#nowMs = Date.parse(startIso);
  }

  now(): Date {
    return new Date(this.#nowMs);
  }

  /** Every sleep asked for: when, and for how long (what a test of a loop's pacing reads). */
  get sleeps(): readonly { readonly atMs: number; readonly ms: number }[] {
    return this.#sleeps;
  }

  get nowMs(): number {
    return this.#nowMs;
  }

  /** Moves the clock on; sleepers it passes wake on the next turn of the event loop. */
  advance(ms: number): void {
    this.#nowMs += ms;
    this.#schedule();
  }

  readonly sleep: Sleep = (ms, wake) =>
    new Promise<void>((resolve) => {
      const sleeper: Sleeper = { atMs: this.#nowMs + Math.max(0, ms), order: this.#order++, resolve };
      this.#sleepers.push(sleeper);
      this.#sleeps.push({ atMs: this.#nowMs, ms });
      void wake?.then(() => this.#wakeEarly(sleeper));
      this.#schedule();
    });

  /** Stops time while `work` is pending: for a gate the test opens, or I/O the fakes do not see. */
  holdWhile<T>(work: Promise<T>): Promise<T> {
    this.#holds++;
    const release = () => {
      this.#holds--;
      this.#schedule();
    };
    work.then(release, release);
    return work;
  }

  #wakeEarly(sleeper: Sleeper): void {
    const index = this.#sleepers.indexOf(sleeper);
    if (index < 0) return;
    this.#sleepers.splice(index, 1);
    sleeper.resolve();
  }

  // setImmediate runs after every pending promise has settled: if a sleeper is still waiting
  // then, nothing in memory can make progress until time moves.
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#wakeEarliest();
    });
  }

  #wakeEarliest(): void {
    if (this.#holds > 0) return;
    const next = this.#sleepers.toSorted((a, b) => a.atMs - b.atMs || a.order - b.order)[0];
    if (!next) return;
    this.#sleepers.splice(this.#sleepers.indexOf(next), 1);
    this.#nowMs = Math.max(this.#nowMs, next.atMs);
    next.resolve();
    this.#schedule();
  }
}

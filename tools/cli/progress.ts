import { SingleBar, Presets } from "cli-progress";

/** The counts a batch's `batch.progress` events carry. */
export type Counts = { readonly total: number; readonly queued: number; readonly running: number; readonly succeeded: number; readonly failed: number; readonly cancelled: number; readonly expired: number };

export const doneOf = (c: Counts) => c.succeeded + c.failed + c.cancelled + c.expired;

/**
 * Shows a batch's progress: a bar on a terminal, one JSON line per update for scripts (`--json`,
 * or output that is not a terminal). Writes to stderr, so that stdout carries only the answer.
 */
export class Progress {
  readonly #bar: SingleBar | undefined;
  readonly #json: boolean;
  #started = false;
  /** The most lines seen done: two sources report counts (events and reads), and a late one must not move the bar back. */
  #done = 0;

  constructor(options: { readonly json: boolean; readonly terminal: boolean }) {
    this.#json = options.json;
    this.#bar = options.json || !options.terminal
      ? undefined
      : new SingleBar({ format: "{bar} {percentage}% | {value}/{total} lines | {running} running, {failed} failed | {eta_formatted} left", stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  }

  update(counts: Counts): void {
    if (doneOf(counts) < this.#done) return;
    this.#done = doneOf(counts);
    const payload = { running: counts.running, failed: counts.failed + counts.cancelled + counts.expired };
    if (this.#bar) {
      if (!this.#started) this.#bar.start(counts.total, doneOf(counts), payload);
      else this.#bar.update(doneOf(counts), payload);
      this.#started = true;
    } else if (this.#json) {
      process.stderr.write(`${JSON.stringify({ type: "progress", ...counts })}\n`);
    }
  }

  note(message: string): void {
    if (this.#bar && this.#started) this.#bar.stop();
    this.#started = false;
    process.stderr.write(this.#json ? `${JSON.stringify({ type: "note", message })}\n` : `${message}\n`);
  }

  stop(): void {
    if (this.#bar && this.#started) this.#bar.stop();
    this.#started = false;
  }
}

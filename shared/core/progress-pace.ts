/**
 * The pace of a batch's `batch.progress` events from one batcher run: the lines that change within
 * a gap share one event, so a batch costs its subscribers' look-ups per second, not per line.
 */

/** The shortest time between two `batch.progress` events of one batch from one batcher run. */
export const PROGRESS_GAP_MS = 1_000;

/**
 * How long a batch's subscriber list is used before it is read again. A client that subscribes
 * meanwhile is not left behind: its subscribe answers with the batch's progress at once.
 */
export const PROGRESS_SUBSCRIBERS_REREAD_MS = 5_000;

/** How long to wait before telling a batch's progress: at once, unless the last time was less than a gap ago. */
export function progressDelayMs(lastToldMs: number | undefined, nowMs: number, gapMs: number = PROGRESS_GAP_MS): number {
  return lastToldMs === undefined ? 0 : Math.max(0, lastToldMs + gapMs - nowMs);
}

/** Whether a subscriber list read at `readAtMs` is to be read again. */
export function subscribersStale(readAtMs: number, nowMs: number, rereadMs: number = PROGRESS_SUBSCRIBERS_REREAD_MS): boolean {
  return nowMs - readAtMs >= rereadMs;
}

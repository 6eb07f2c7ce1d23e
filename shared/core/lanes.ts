/**
 * A route's jobs wait in one SQS queue per lane, because SQS has no priority: a job in the same
 * queue as a 20,000-job batch file waits behind it whatever its priority. Batchers fill free room
 * from the interactive lane first, and give the batch lane a floor so it never starves
 * (`decideNext`).
 */
export const LANES = ["interactive", "batch"] as const;
export type Lane = (typeof LANES)[number];

/** Jobs at this priority or above go to the interactive lane, unless the route says otherwise. */
export const DEFAULT_INTERACTIVE_MIN_PRIORITY = 5;

/**
 * A job's lane. A priority the caller gave decides; without one the way in does: a job submitted
 * alone is interactive, a batch file's line is batch. With the priority's default (5) alone, every
 * batch file would share the interactive lane and the lanes would separate nothing.
 */
export function laneOf(given: number | undefined, fromBatchFile: boolean, interactiveMinPriority: number): Lane {
  if (given === undefined) return fromBatchFile ? "batch" : "interactive";
  return given >= interactiveMinPriority ? "interactive" : "batch";
}

/**
 * The batch lane keeps the route's queue name from before lanes, so a deployed stack keeps its
 * queue and the messages in it; the interactive lane's queue is new.
 */
export function laneQueueSuffix(lane: Lane): string {
  return lane === "batch" ? "" : "-interactive";
}

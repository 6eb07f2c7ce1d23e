/**
 * How long a job may wait in the queue for a component to become ready (a scale from zero, a copy
 * loading its model). The wait counts from the first time the job was put back for warming
 * (carried in its message, `warming_since`, so it costs no read or write), and is bounded by the
 * route's `max_warming_wait_seconds` and by the job's own deadline, whichever comes first: a
 * component that never becomes ready ends its jobs instead of requeueing them forever.
 */

/**
 * 30 minutes: a scale from zero takes about a minute for the alarm and the reaction, then the
 * copy's start (image, weights, load), and an instance's too if the endpoint had none: minutes,
 * up to about 15 with a large model on a fresh instance. Twice that is a component that will not
 * come up without someone's help.
 */
export const DEFAULT_MAX_WARMING_WAIT_SECONDS = 1800;

/** The error code of a job ended because its component never became ready. */
export const COMPONENT_NOT_READY = "component_not_ready";

export type WarmingWait = {
  readonly nowMs: number;
  /** When the job was first put back for warming; undefined: this is its first wait. */
  readonly warmingSinceMs: number | undefined;
  readonly deadlineMs: number | undefined;
  /** How long the batcher would have it wait before it looks again (the recheck period, or what is left of a component's warming). */
  readonly delaySeconds: number;
  readonly maxWaitSeconds: number;
  /** What it waits for, for the reason: the component's name, or the route's components'. */
  readonly waitingFor: string;
};

export type WarmingWaitDecision =
  | { readonly kind: "wait"; readonly delaySeconds: number; readonly warmingSinceMs: number }
  | { readonly kind: "expire" }
  | { readonly kind: "give-up"; readonly code: typeof COMPONENT_NOT_READY; readonly reason: string };

/**
 * Waits again, for no longer than the bound or the deadline leave (at least a second, SQS's
 * unit); past its deadline the job expires; past the bound it fails, saying how long it waited.
 *
 * @example
 * decideWarmingWait({ nowMs: 1_800_000, warmingSinceMs: 0, deadlineMs: undefined, delaySeconds: 30, maxWaitSeconds: 1800, waitingFor: "llama-3-8b-ic" })
 * // { kind: "give-up", code: "component_not_ready", reason: "no copy of llama-3-8b-ic became ready in 1800 s of waiting (max_warming_wait_seconds: 1800)" }
 */
export function decideWarmingWait(w: WarmingWait): WarmingWaitDecision {
  if (w.deadlineMs !== undefined && w.deadlineMs <= w.nowMs) return { kind: "expire" };
  const sinceMs = Math.min(w.warmingSinceMs ?? w.nowMs, w.nowMs);
  const boundMs = sinceMs + w.maxWaitSeconds * 1000;
  if (w.nowMs >= boundMs) {
    const waitedSeconds = Math.round((w.nowMs - sinceMs) / 1000);
    return {
      kind: "give-up",
      code: COMPONENT_NOT_READY,
      reason: `no copy of ${w.waitingFor} became ready in ${waitedSeconds} s of waiting (max_warming_wait_seconds: ${w.maxWaitSeconds})`,
    };
  }
  const untilMs = Math.min(boundMs, w.deadlineMs ?? Number.POSITIVE_INFINITY);
  const delaySeconds = Math.max(1, Math.min(w.delaySeconds, Math.ceil((untilMs - w.nowMs) / 1000)));
  return { kind: "wait", delaySeconds, warmingSinceMs: sinceMs };
}

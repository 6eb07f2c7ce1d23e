import { JobEventOrder, type JobEventFields } from "#shared/core/event-order";
import { isTerminalStatus } from "./writes.ts";

/**
 * A subscriber's check of the order of its job events. Each event goes through the clients' rule
 * (shared/core/event-order.ts: versions), and both the stream as it arrived and the events the
 * rule applies are checked against what the job's own history allows, which knows nothing of
 * versions: nothing follows a final event but that event again, a `job.waiting` does not follow
 * a `job.running`, and the last claim's time (`timings.started_at`) never goes back (an event of
 * an earlier claim after one of a later claim, or one from before any claim after a claim). So the
 * count before versions shows what a client without the rule would have applied out of order, and
 * the count after shows the rule leaves none.
 */

/** A job event as a subscriber parses it. */
export type ReceivedJobEvent = JobEventFields & {
  readonly job?: { readonly job_id?: string; readonly version?: number; readonly status?: string; readonly timings?: { readonly started_at?: string | undefined } } | undefined;
};

/** What the events applied so far say of a job. */
type Seen = { readonly status: string; readonly startedAt: string | undefined };

export type EventOrderFigures = {
  /** Events applied under the version rule that the job's history says cannot follow the one applied before: 0 when the rule works. */
  readonly outOfOrder: number;
  /** Events as they arrived that the job's history says cannot follow the one before: what a client without versions would misapply. */
  readonly outOfOrderBeforeVersions: number;
  /** Events the version rule dropped as older than one applied. */
  readonly staleByVersion: number;
  /** Events the version rule dropped as the same as the last applied (delivery is at least once). */
  readonly repeated: number;
};

export class EventOrderCheck implements EventOrderFigures {
  outOfOrder = 0;
  outOfOrderBeforeVersions = 0;
  staleByVersion = 0;
  repeated = 0;
  readonly #order = new JobEventOrder();
  readonly #arrived = new Map<string, Seen>();
  readonly #applied = new Map<string, Seen>();

  /** Whether a client applies the event (its version is above the last applied); counts what it shows. */
  observe(event: ReceivedJobEvent): boolean {
    const jobId = event.job?.job_id ?? event.job_id;
    if (jobId === undefined) return true;
    if (!follow(this.#arrived, jobId, event)) this.outOfOrderBeforeVersions++;
    const place = this.#order.place(event);
    if (place === "stale") this.staleByVersion++;
    if (place === "repeat") this.repeated++;
    if (place !== "apply") return false;
    if (!follow(this.#applied, jobId, event)) this.outOfOrder++;
    return true;
  }
}

/** Whether the event may follow what `seen` holds of the job; a state event that may is remembered. */
function follow(seen: Map<string, Seen>, jobId: string, event: ReceivedJobEvent): boolean {
  const before = seen.get(jobId);
  const status = event.job?.status;
  if (status === undefined) return before === undefined || (!isTerminalStatus(before.status) && !(event.type === "job.waiting" && before.status === "RUNNING"));
  const startedAt = event.job?.timings?.started_at;
  const allowed =
    before === undefined ||
    (isTerminalStatus(before.status)
      ? status === before.status
      : before.startedAt === undefined || (startedAt !== undefined && startedAt >= before.startedAt));
  // A move it does not allow is counted once: the job's furthest state stays what it was.
  if (allowed) seen.set(jobId, { status, startedAt });
  return allowed;
}

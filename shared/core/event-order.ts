/**
 * The order rule every client applies to a job's events (README, "Ordered events"). A job's events
 * are posted by different functions (a batcher, another batcher that took the job over, a cancel,
 * the dead-letter function) and may arrive in any order, and more than once. Each carries the
 * job's version, which the write that changed the job moved on:
 * - a state event (`job.queued`, `job.running`, `job.succeeded`, ...: `job.version`) is applied
 *   only if its version is above that of the last state event applied;
 * - a progress event (`job.token`, `job.waiting`: `version`, `index`) belongs to the state of its
 *   version: it is dropped once a later state was applied, and otherwise applied only if its
 *   (version, index) is above that of the last event of its type applied.
 * Events without a version (a server from before versions) and events of no job are applied.
 */

/** What a client reads of an event to order it: a state event's job, or a progress event's own fields. */
export type JobEventFields = {
  readonly type?: string | undefined;
  readonly job?: { readonly job_id?: string | undefined; readonly version?: number | undefined } | undefined;
  readonly job_id?: string | undefined;
  readonly version?: number | undefined;
  readonly index?: number | undefined;
};

/** `apply`: newer than anything applied; `repeat`: the same as the last applied (delivery is at least once); `stale`: older. */
export type EventPlace = "apply" | "repeat" | "stale";

const PROGRESS_TYPES: ReadonlySet<string> = new Set(["job.token", "job.waiting"]);

type Progress = { readonly version: number; readonly index: number };

/** A client's memory of each job's last applied versions: one per connection (or per client), kept for as long as it follows the jobs. */
export class JobEventOrder {
  readonly #states = new Map<string, number>();
  readonly #progress = new Map<string, Progress>();

  /** Where the event stands against those applied before it; an `apply` is remembered as applied. */
  place(event: JobEventFields): EventPlace {
    const type = event.type ?? "";
    if (!type.startsWith("job.")) return "apply";
    return PROGRESS_TYPES.has(type) ? this.#placeProgress(type, event) : this.#placeState(event);
  }

  /** Whether to apply the event: `place(event) === "apply"`. */
  accept(event: JobEventFields): boolean {
    return this.place(event) === "apply";
  }

  /** The version of the last state event applied for the job; undefined before any. */
  lastVersion(jobId: string): number | undefined {
    return this.#states.get(jobId);
  }

  #placeState(event: JobEventFields): EventPlace {
    const jobId = event.job?.job_id;
    const version = event.job?.version;
    if (jobId === undefined || version === undefined) return "apply";
    const last = this.#states.get(jobId);
    if (last !== undefined && version <= last) return version === last ? "repeat" : "stale";
    this.#states.set(jobId, version);
    return "apply";
  }

  #placeProgress(type: string, event: JobEventFields): EventPlace {
    const { job_id: jobId, version, index } = event;
    if (jobId === undefined || version === undefined || index === undefined) return "apply";
    if (version < (this.#states.get(jobId) ?? -Infinity)) return "stale";
    const key = `${type} ${jobId}`;
    const last = this.#progress.get(key);
    if (last !== undefined) {
      const order = version - last.version || index - last.index;
      if (order <= 0) return order === 0 ? "repeat" : "stale";
    }
    this.#progress.set(key, { version, index });
    return "apply";
  }
}

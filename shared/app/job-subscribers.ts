import { jobTopic } from "../core/events.ts";
import { isTerminal, type JobRecord } from "../core/jobs.ts";
import { subscriberLookup } from "../core/subscriber-lookup.ts";
import type { SubscriptionStore } from "../ports.ts";

type Cached = { readonly subscriptions: number; readonly connections: Promise<readonly string[]> };

/**
 * A batcher invocation's look-ups of its jobs' subscribers (core/subscriber-lookup.ts): a job's
 * running and final events share one while nobody subscribes in between. Kept until the job's
 * final event, so it holds the jobs in flight only.
 */
export class JobSubscriberCache {
  readonly #byJob = new Map<string, Cached>();

  /** The job's subscribers, looked up only when its count says there may be ones this run has not seen. */
  connectionsOf(subscriptions: Pick<SubscriptionStore, "subscribers">, job: JobRecord): Promise<readonly string[]> {
    const cached = this.#byJob.get(job.job_id);
    switch (subscriberLookup(job.subscriptions, cached?.subscriptions)) {
      case "none":
        return Promise.resolve([]);
      case "cached":
        if (cached) return cached.connections;
    }
    const connections = subscriptions.subscribers(jobTopic(job.job_id));
    if (job.subscriptions === undefined) return connections;
    const entry = { subscriptions: job.subscriptions, connections };
    this.#byJob.set(job.job_id, entry);
    // A failed read is not kept: the next event reads again.
    connections.catch(() => this.#forgetEntry(job.job_id, entry));
    return connections;
  }

  /** After a job's event was posted: connections found gone are left out, and a final event ends the job's entry. */
  posted(job: JobRecord, gone: readonly string[]): void {
    const cached = this.#byJob.get(job.job_id);
    if (!cached) return;
    if (isTerminal(job.status)) this.#byJob.delete(job.job_id);
    else if (gone.length > 0) this.#byJob.set(job.job_id, { ...cached, connections: cached.connections.then((list) => list.filter((c) => !gone.includes(c))) });
  }

  #forgetEntry(jobId: string, entry: Cached): void {
    if (this.#byJob.get(jobId) === entry) this.#byJob.delete(jobId);
  }
}

/** Without a cache (outside a batcher): a look-up unless the job's count says nobody subscribed. */
export function subscribersOf(subscriptions: Pick<SubscriptionStore, "subscribers">, job: JobRecord): Promise<readonly string[]> {
  return subscriberLookup(job.subscriptions, undefined) === "none" ? Promise.resolve([]) : subscriptions.subscribers(jobTopic(job.job_id));
}

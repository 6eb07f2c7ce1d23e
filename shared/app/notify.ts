import { ConnectionGoneError } from "../core/errors.ts";
import { jobEvent, type ServerEvent } from "../core/events.ts";
import { toJobView, type JobRecord } from "../core/jobs.ts";
import type { Notifier, SubscriptionStore } from "../ports.ts";
import { subscribersOf, type JobSubscriberCache } from "./job-subscribers.ts";
import type { Logger } from "./logger.ts";

export type NotifyDeps = {
  readonly subscriptions: SubscriptionStore;
  readonly notifier: Notifier;
  readonly logger: Logger;
  /** A batcher invocation's look-ups of its jobs' subscribers, shared by each job's events. */
  readonly jobSubscribers?: JobSubscriberCache | undefined;
};

/**
 * Posts an event to every subscriber of the topics, once per connection. A connection that is
 * gone loses its subscriptions; any other failure is logged and swallowed: notification is
 * best-effort and at-least-once, while the job record (GET /v1/jobs/{id}) is the truth.
 */
export async function notifyTopics(deps: NotifyDeps, topics: readonly string[], event: ServerEvent): Promise<number> {
  const lists = await Promise.all(topics.map((t) => deps.subscriptions.subscribers(t)));
  const { delivered } = await postToConnections(deps, [...new Set(lists.flat())], event);
  return delivered;
}

/**
 * Posts an event to each connection, as notifyTopics does: says how many got it, and which
 * connections are gone (their subscriptions removed).
 */
export async function postToConnections(deps: NotifyDeps, connections: readonly string[], event: ServerEvent): Promise<{ delivered: number; gone: string[] }> {
  const results = await Promise.allSettled(connections.map((c) => deps.notifier.post(c, event)));
  let delivered = 0;
  const gone: string[] = [];
  await Promise.all(
    results.map(async (result, i) => {
      const connectionId = connections[i] as string;
      if (result.status === "fulfilled") {
        delivered++;
      } else if (result.reason instanceof ConnectionGoneError) {
        gone.push(connectionId);
        await deps.subscriptions.removeConnection(connectionId);
      } else {
        deps.logger.warn("notification failed", { connectionId, type: event.type, error: String(result.reason) });
      }
    }),
  );
  return { delivered, gone };
}

/**
 * Tells the subscribers of a job about its current state. Its batch's subscribers are told of it
 * in the batch's paced `batch.progress` (batcher/paced-progress.ts), not line by line: a look-up
 * of the batch's subscribers per line's event was most of what a line asked of AWS. The job's own
 * are looked up only when its subscribe count says there may be some (core/subscriber-lookup.ts).
 */
export async function notifyJob(deps: NotifyDeps, job: JobRecord): Promise<number> {
  const connections = await (deps.jobSubscribers ? deps.jobSubscribers.connectionsOf(deps.subscriptions, job) : subscribersOf(deps.subscriptions, job));
  const { delivered, gone } = await postToConnections(deps, connections, jobEvent(toJobView(job)));
  deps.jobSubscribers?.posted(job, gone);
  return delivered;
}

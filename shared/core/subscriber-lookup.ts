/**
 * Whether a job's event needs a look-up of its subscribers (a DynamoDB Query). A subscribe counts
 * itself on the job after storing its subscription (`JobRecord.subscriptions`), and every write
 * that changes the job answers with the job: so a job nobody subscribed to needs no look-up, and
 * one whose count has not moved since this batcher run last looked has the subscribers it had.
 * A subscribe that lands after the write was answered reads the job itself (the count's own
 * answer) and sends a finished job's final event: one path or the other tells it, as before.
 */
export type SubscriberLookup = "none" | "cached" | "read";

/** `subscriptions`: the job's count as its write answered; `cachedAt`: the count when this run last read its subscribers. */
export function subscriberLookup(subscriptions: number | undefined, cachedAt: number | undefined): SubscriberLookup {
  // A record stored before the count was kept may have subscribers all the same.
  if (subscriptions === undefined) return "read";
  if (subscriptions === 0) return "none";
  return cachedAt === subscriptions ? "cached" : "read";
}

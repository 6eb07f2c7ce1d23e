import type { JobQueue } from "../../ports.ts";
import { withWarmingSince } from "./messages.ts";
import type { Pending, Settlement } from "./types.ts";

/**
 * How the run's messages end: a delivered one is acknowledged by the event source mapping unless
 * reported for retry; a pulled one is deleted here. Each is dealt with only once its job's state
 * is durable.
 */
export class Settlements {
  readonly #queue: JobQueue;
  readonly #route: string;
  /** Delivered messages to hand back to the event source mapping. */
  readonly #retry = new Set<string>();
  /** Messages whose job state is durable and whose message was dealt with. */
  readonly #settled = new Set<string>();

  constructor(queue: JobQueue, route: string) {
    this.#queue = queue;
    this.#route = route;
  }

  get retry(): readonly string[] {
    return [...this.#retry];
  }

  async settle(pending: Pending, outcome: Settlement): Promise<void> {
    const { source } = pending;
    if (outcome.kind === "requeue") {
      // A new message for later; the original is done (deleted now, or by the event source mapping).
      await this.#queue.requeue(this.#route, outcome.body === undefined ? source : { ...source, body: outcome.body }, outcome.delaySeconds);
    } else if (outcome.kind === "retry") {
      // Reported before the release: a release that fails must still not count as a success.
      if (source.kind === "delivered") this.#retry.add(source.messageId);
      await this.#queue.release(this.#route, source.receiptHandle, outcome.delaySeconds, source.lane);
    } else if (source.kind === "pulled") {
      await this.#queue.delete(this.#route, source.receiptHandle, source.lane);
    }
    this.#settled.add(source.messageId);
  }

  /**
   * After a store or queue failed mid-way: what was not settled goes back to SQS as it is (not
   * deleted), to be delivered again once its visibility timeout passes.
   */
  handBackUnsettled(members: readonly Pending[]): void {
    for (const { source } of members) {
      if (source.kind === "delivered" && !this.#settled.has(source.messageId)) this.#retry.add(source.messageId);
    }
  }

  /**
   * Work that could not start in time goes back as new messages: not a failed delivery. Its
   * component was serving, so a wait for warming it may have had is over: its bound starts afresh.
   */
  async requeueAll(waiting: readonly Pending[]): Promise<void> {
    const freshly = (p: Pending) => (p.message.warming_since === undefined ? p.source : { ...p.source, body: withWarmingSince(p.message, undefined) });
    await Promise.all(waiting.map((p) => this.#queue.requeue(this.#route, freshly(p), 0)));
  }
}

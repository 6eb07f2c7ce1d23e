import type { AcceptedTwice } from "./accounting.ts";
import type { ChaosOptions } from "./options.ts";
import { type Accepted, submitAll, type SubmitStats, type Target } from "./submit.ts";
import type { Subscriber } from "./subscribers.ts";

/**
 * The run's submissions while they go on: every job id the API answered with, and each job handed
 * to a subscriber to follow (round robin, 100 at a time) as soon as it is accepted.
 */
export class Submissions {
  readonly accepted = new Set<string>();
  readonly acceptedTwice: AcceptedTwice[] = [];
  readonly via = { batch: 0, http: 0, ws: 0 };
  /** Settles when every job has been submitted (or given up). */
  readonly done: Promise<void>;
  readonly startedAt: number;
  /** Set once `done` has resolved. */
  stats: SubmitStats | undefined;
  readonly #options: ChaosOptions;
  readonly #subscribers: readonly Subscriber[];
  readonly #random: () => number;
  #assign = 0;

  constructor(options: ChaosOptions, target: Target, subscribers: readonly Subscriber[], random: () => number) {
    this.#options = options;
    this.#subscribers = subscribers;
    this.#random = random;
    const plan = {
      jobs: options.jobs,
      models: options.models,
      maxTokens: options.maxTokens,
      batchShare: options.batchShare,
      batchLines: options.batchLines,
      wsShare: options.wsShare,
      deadlineShare: options.faults ? options.deadlineShare : 0,
      cancelShare: options.faults ? options.cancelShare : 0,
      concurrency: options.submitConcurrency,
      seed: options.seed,
      random,
    };
    this.done = submitAll(plan, target, subscribers, (accepted) => this.#onAccepted(accepted)).then((stats) => {
      this.stats = stats;
    });
    this.done.catch(() => undefined);
    this.startedAt = Date.now();
  }

  get submitted(): boolean {
    return this.stats !== undefined;
  }

  #onAccepted({ jobIds, via }: Accepted): void {
    this.via[via] += jobIds.length;
    for (const id of jobIds) {
      if (this.accepted.has(id)) this.acceptedTwice.push({ jobId: id, via });
      this.accepted.add(id);
    }
    const subscribers = this.#subscribers;
    // A job submitted over a WebSocket is followed by its submitter already.
    if (via === "ws" || subscribers.length === 0) return;
    const share = this.#options.followShare;
    const followed = share >= 1 ? jobIds : jobIds.filter(() => this.#random() < share);
    for (let i = 0; i < followed.length; i += 100) {
      const subscriber = subscribers[this.#assign++ % subscribers.length] as Subscriber;
      subscriber.follow(followed.slice(i, i + 100));
    }
  }
}

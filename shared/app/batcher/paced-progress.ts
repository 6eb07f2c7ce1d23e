import { batchTopic } from "../../core/events.ts";
import { progressDelayMs, subscribersStale } from "../../core/progress-pace.ts";
import type { JobStore, Sleep } from "../../ports.ts";
import { reportBatchProgress, type BatchControlDeps } from "../batch-progress.ts";
import { postToConnections, type NotifyDeps } from "../notify.ts";
import { batchCounts } from "../queries.ts";

export type PacedProgressDeps = NotifyDeps & BatchControlDeps & { readonly jobs: JobStore; readonly sleep: Sleep };

/**
 * A batcher run's `batch.progress` events: while the run goes on, at most one per batch a
 * PROGRESS_GAP_MS, with the counts as they are when it goes out; when the run ends, a last one for
 * every batch the run changed, which also moves an OpenAI batch whose last job ended on to
 * finalizing (reportBatchProgress). A line's change costs no request of its own: the lines that
 * change within a gap share one event, and a batch nobody watches costs a subscriber look-up
 * every PROGRESS_SUBSCRIBERS_REREAD_MS. Best-effort, as every notification: the job records and
 * `GET /v1/batches/{id}` are the truth, and a subscribe answers with the progress at once.
 */
export class PacedBatchProgress {
  readonly #deps: PacedProgressDeps;
  readonly #changed = new Set<string>();
  readonly #lastToldMs = new Map<string, number>();
  readonly #scheduled = new Map<string, Promise<void>>();
  readonly #subscribers = new Map<string, { readonly list: Promise<readonly string[]>; readonly readAtMs: number }>();
  readonly #ending = Promise.withResolvers<void>();
  #ended = false;

  constructor(deps: PacedProgressDeps) {
    this.#deps = deps;
  }

  /** A line of the batch changed: its subscribers hear of it within a gap. */
  changed(batchId: string): void {
    this.#changed.add(batchId);
    if (this.#ended || this.#scheduled.has(batchId)) return;
    const delayMs = progressDelayMs(this.#lastToldMs.get(batchId), this.#nowMs());
    const told = this.#deps.sleep(delayMs, this.#ending.promise).then(async () => {
      this.#scheduled.delete(batchId);
      // The run's last event replaces one still waiting for its gap.
      if (!this.#ended) await this.#tellSubscribers(batchId);
    });
    this.#scheduled.set(batchId, told);
  }

  /** The run is over: the last event of every batch it changed, once the ones under way are out. */
  async end(): Promise<void> {
    this.#ended = true;
    this.#ending.resolve();
    await Promise.allSettled(this.#scheduled.values());
    await Promise.all([...this.#changed].map((batchId) => reportBatchProgress(this.#deps, batchId)));
  }

  async #tellSubscribers(batchId: string): Promise<void> {
    this.#lastToldMs.set(batchId, this.#nowMs());
    try {
      const subscribers = await this.#subscribersOf(batchId);
      if (subscribers.length === 0) return;
      const batch = await this.#deps.batches.get(batchId);
      if (!batch) return;
      const event = { type: "batch.progress", batch_id: batchId, request_counts: await batchCounts(this.#deps, batch) } as const;
      const { gone } = await postToConnections(this.#deps, subscribers, event);
      if (gone.length > 0) this.#subscribers.set(batchId, { readAtMs: this.#nowMs(), list: Promise.resolve(subscribers.filter((c) => !gone.includes(c))) });
    } catch (error) {
      this.#deps.logger.warn("could not tell a batch's progress; the run's last event tells it", { batchId, error: String(error) });
    }
  }

  #subscribersOf(batchId: string): Promise<readonly string[]> {
    const cached = this.#subscribers.get(batchId);
    if (cached && !subscribersStale(cached.readAtMs, this.#nowMs())) return cached.list;
    const list = this.#deps.subscriptions.subscribers(batchTopic(batchId));
    this.#subscribers.set(batchId, { list, readAtMs: this.#nowMs() });
    // A failed read is not kept: the next event reads again.
    list.catch(() => {
      if (this.#subscribers.get(batchId)?.list === list) this.#subscribers.delete(batchId);
    });
    return list;
  }

  #nowMs(): number {
    return this.#deps.clock.now().getTime();
  }
}

import WebSocket from "ws";
import { JobEventOrder } from "#shared/core/event-order";

/** A WebSocket event of the public API, reduced to what the bench reads. */
export type JobEvent = {
  readonly type: string;
  readonly job?: {
    readonly job_id: string;
    readonly status: string;
    readonly waiting_reason?: string | undefined;
    readonly result?: { readonly completion_tokens?: number } | undefined;
    readonly error?: { readonly code?: string; readonly message?: string } | undefined;
    readonly timings?: { readonly submitted_at: string; readonly started_at?: string | undefined; readonly finished_at?: string | undefined };
    readonly gpu_batch?: { readonly gpu_batch_size: number } | undefined;
  };
};

const FINAL_TYPES = new Set(["job.succeeded", "job.failed", "job.cancelled", "job.expired"]);
/** Subscriptions go out together every this many ms: one frame for the jobs submitted meanwhile. */
const SUBSCRIBE_FLUSH_MS = 20;

/** Called for a job still waiting that says why (`waiting_reason`, e.g. "warming"). */
export type OnWaiting = (jobId: string, reason: string) => void;

/**
 * One WebSocket connection to the stack, as a client waiting on many jobs holds it: it
 * subscribes to each job it is given and calls back on the job's first final event, and on
 * every event of a job that waits saying why.
 */
export class FinalEvents {
  readonly #socket: WebSocket;
  readonly #pending: string[] = [];
  readonly #onFinal: (event: JobEvent, atMs: number) => void;
  #timer: NodeJS.Timeout | undefined;
  readonly #seen = new Set<string>();
  readonly #order = new JobEventOrder();

  private constructor(socket: WebSocket, onFinal: (event: JobEvent, atMs: number) => void, onWaiting: OnWaiting | undefined) {
    this.#socket = socket;
    this.#onFinal = onFinal;
    socket.on("message", (data) => {
      const atMs = performance.now();
      const event = JSON.parse(String(data)) as JobEvent;
      const id = event.job?.job_id;
      // A stale job.queued (its version below the job.running applied) must not count as a wait.
      if (id === undefined || !this.#order.accept(event)) return;
      const reason = event.job?.waiting_reason;
      if (reason !== undefined && !FINAL_TYPES.has(event.type)) onWaiting?.(id, reason);
      if (!FINAL_TYPES.has(event.type) || this.#seen.has(id)) return;
      this.#seen.add(id);
      this.#onFinal(event, atMs);
    });
  }

  static async connect(url: string, apiKey: string, onFinal: (event: JobEvent, atMs: number) => void, onWaiting?: OnWaiting): Promise<FinalEvents> {
    const socket = new WebSocket(`${url}?token=${encodeURIComponent(apiKey)}`);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
      socket.once("unexpected-response", (_req, res) => reject(new Error(`WebSocket upgrade refused: ${res.statusCode}`)));
    });
    return new FinalEvents(socket, onFinal, onWaiting);
  }

  subscribe(jobId: string): void {
    this.#pending.push(jobId);
    this.#timer ??= setTimeout(() => this.#flush(), SUBSCRIBE_FLUSH_MS);
  }

  #flush(): void {
    this.#timer = undefined;
    // The API takes at most 100 jobs per subscribe.
    while (this.#pending.length > 0) this.#socket.send(JSON.stringify({ action: "subscribe", job_ids: this.#pending.splice(0, 100) }));
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#socket.close();
  }
}

export const isFinal = (type: string): boolean => FINAL_TYPES.has(type);

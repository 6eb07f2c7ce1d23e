import WebSocket from "ws";
import { EventOrderCheck, type ReceivedJobEvent } from "./event-order.ts";
import { isTerminalStatus, StatusTracker } from "./writes.ts";

/**
 * WebSocket subscribers for the chaos run: each keeps a set of jobs it follows, subscribes to them
 * (100 a frame, resent when the answer is an error or does not come), and, if it is flaky, drops
 * its connection now and then (abruptly or with a close frame), reconnects and subscribes again to
 * every job it has not seen the end of. Job events go through the clients' version rule (the
 * order check counts what arrived out of order, and what the rule let through out of order); those
 * applied are kept as the job's last status per subscriber, with the moves backwards they showed.
 */

const SUBSCRIBE_CHUNK = 100;
const RESEND_AFTER_MS = 15_000;
const MAX_SENDS = 20;

export type SubscriberOptions = {
  readonly url: string;
  readonly apiKey: string;
  /** Drops the connection after this many ms (drawn anew each time); undefined: a steady subscriber. */
  readonly nextDropMs?: (() => number) | undefined;
  /** Waits this long before reconnecting after a drop or a refused connect. */
  readonly reconnectDelayMs: () => number;
  readonly random: () => number;
};

type PendingFrame = { readonly ids: readonly string[]; sentAt: number; sends: number };
type PendingSubmit = { readonly job: Record<string, unknown>; sentAt: number; sends: number; readonly accepted: (jobId: string | undefined) => void };

export class Subscriber {
  readonly name: string;
  readonly jobs = new Set<string>();
  /** The terminal status of the last final event per job, over all connections. */
  readonly finalStatus = new Map<string, string>();
  /** Final events received in all (a final event may come more than once: delivery is at least once). */
  finalEvents = 0;
  /** The order of the job events, before and after the version rule. */
  readonly order = new EventOrderCheck();
  readonly tracker: StatusTracker;
  connects = 0;
  refusedConnects = 0;
  drops = 0;
  events = 0;
  errorReplies = 0;
  /** Error replies by code and message (ids and numbers blanked). */
  readonly errorKinds = new Map<string, number>();
  /** Jobs whose subscribe frame the current connection has had answered. */
  acknowledged = new Set<string>();
  resentFrames = 0;
  #socket: WebSocket | undefined;
  #open = false;
  #stopped = false;
  #dropping = false;
  #calm = false;
  #dropTimer: NodeJS.Timeout | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #checker: NodeJS.Timeout;
  readonly #options: SubscriberOptions;
  /** Subscribe frames of the current connection not answered yet, by request id. */
  #pending = new Map<string, PendingFrame>();
  readonly #submits = new Map<string, PendingSubmit>();
  /** Submits answered with their job, by request id: an error with the same id after it means subscribing to the job failed. */
  readonly #answeredSubmits = new Map<string, string>();
  #sequence = 0;
  #onChange: (() => void) | undefined;

  constructor(name: string, options: SubscriberOptions) {
    this.name = name;
    this.#options = options;
    this.tracker = new StatusTracker(`events of ${name}`);
    this.#checker = setInterval(() => this.#resendOverdue(), 1000);
  }

  get connected(): boolean {
    return this.#open;
  }

  get flaky(): boolean {
    return this.#options.nextDropMs !== undefined;
  }

  /** Called whenever an event arrives or the connection changes. */
  onChange(listener: () => void): void {
    this.#onChange = listener;
  }

  start(): void {
    this.#connect();
  }

  /** Follows these jobs: subscribes now if connected, and again on every reconnect. */
  follow(ids: readonly string[]): void {
    const fresh = ids.filter((id) => !this.jobs.has(id));
    for (const id of fresh) this.jobs.add(id);
    if (this.#open) this.#subscribe(fresh);
  }

  /**
   * Submits a job over this connection (with an idempotency key, so resending is safe); resolves
   * with its id, or undefined when no answer came after every resend.
   */
  submit(job: Record<string, unknown>): Promise<string | undefined> {
    return new Promise((resolve) => {
      const requestId = `s${this.#sequence++}`;
      const pending: PendingSubmit = { job, sentAt: 0, sends: 0, accepted: resolve };
      this.#submits.set(requestId, pending);
      if (this.#open) this.#sendSubmit(requestId, pending);
    });
  }

  /** Stops dropping: from now on the connection stays (it reconnects if it is down). */
  calm(): void {
    this.#calm = true;
    this.#dropping = false;
    clearTimeout(this.#dropTimer);
  }

  /** Jobs in subscribe frames of this connection not answered yet. */
  get unanswered(): Set<string> {
    return new Set([...this.#pending.values()].flatMap((f) => f.ids));
  }

  /** Whether every subscribe frame of this connection has been answered. */
  get settled(): boolean {
    return this.#open && this.#pending.size === 0;
  }

  close(): void {
    this.#stopped = true;
    clearInterval(this.#checker);
    clearTimeout(this.#dropTimer);
    clearTimeout(this.#reconnectTimer);
    this.#socket?.terminate();
  }

  #connect(): void {
    this.#reconnectTimer = undefined;
    if (this.#stopped) return;
    const socket = new WebSocket(`${this.#options.url}?token=${encodeURIComponent(this.#options.apiKey)}`);
    this.#socket = socket;
    socket.on("unexpected-response", (_req, res) => {
      // $connect failed (e.g. DynamoDB refused to store the connection): try again.
      this.refusedConnects++;
      res.resume();
      socket.terminate();
    });
    socket.on("error", () => undefined);
    socket.on("open", () => {
      this.connects++;
      this.#open = true;
      this.#pending = new Map();
      this.acknowledged = new Set();
      // As a client would: again to every job it has no final event of (a finished one answers at once).
      this.#subscribe([...this.jobs].filter((id) => !this.finalStatus.has(id)));
      for (const [requestId, pending] of this.#submits) this.#sendSubmit(requestId, pending);
      if (this.#options.nextDropMs && !this.#stopped && !this.#calm) {
        this.#dropping = true;
        this.#dropTimer = setTimeout(() => this.#drop(), this.#options.nextDropMs());
      }
      this.#onChange?.();
    });
    socket.on("message", (data) => this.#receive(String(data)));
    socket.on("close", () => {
      if (this.#socket !== socket) return;
      this.#open = false;
      this.#socket = undefined;
      clearTimeout(this.#dropTimer);
      this.#onChange?.();
      if (!this.#stopped) this.#reconnectTimer = setTimeout(() => this.#connect(), this.#options.reconnectDelayMs());
    });
  }

  #drop(): void {
    if (!this.#dropping || !this.#socket) return;
    this.drops++;
    // Half the drops are a clean close, half a vanished peer (no close frame).
    if (this.#options.random() < 0.5) this.#socket.close();
    else this.#socket.terminate();
  }

  #subscribe(ids: readonly string[]): void {
    for (let i = 0; i < ids.length; i += SUBSCRIBE_CHUNK) {
      const requestId = `sub${this.#sequence++}`;
      const frame: PendingFrame = { ids: ids.slice(i, i + SUBSCRIBE_CHUNK), sentAt: 0, sends: 0 };
      this.#pending.set(requestId, frame);
      this.#sendFrame(requestId, frame);
    }
  }

  /**
   * Sends on the open connection; false when there is none (closed, or a new one still
   * connecting), in which case the next connection sends again what is pending.
   */
  #send(message: Record<string, unknown>): boolean {
    if (!this.#open || this.#socket?.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  #sendFrame(requestId: string, frame: PendingFrame): void {
    if (frame.sends >= MAX_SENDS) return;
    if (!this.#send({ action: "subscribe", job_ids: frame.ids, request_id: requestId })) return;
    if (frame.sends > 0) this.resentFrames++;
    frame.sends++;
    frame.sentAt = Date.now();
  }

  #sendSubmit(requestId: string, pending: PendingSubmit): void {
    if (pending.sends >= MAX_SENDS) {
      this.#submits.delete(requestId);
      pending.accepted(undefined);
      return;
    }
    if (!this.#send({ action: "submit", request_id: requestId, job: pending.job })) return;
    pending.sends++;
    pending.sentAt = Date.now();
  }

  #resendOverdue(): void {
    if (!this.#open) return;
    const now = Date.now();
    for (const [requestId, frame] of this.#pending) if (now - frame.sentAt > RESEND_AFTER_MS) this.#sendFrame(requestId, frame);
    for (const [requestId, pending] of this.#submits) if (now - pending.sentAt > RESEND_AFTER_MS) this.#sendSubmit(requestId, pending);
  }

  #receive(text: string): void {
    this.events++;
    let event: ReceivedJobEvent & { type?: string; request_id?: string; job_ids?: string[] };
    try {
      event = JSON.parse(text) as typeof event;
    } catch {
      return;
    }
    if (event.type === "subscribed") {
      // The answer does not carry the request id: match the frame by its jobs.
      const first = event.job_ids?.[0];
      for (const [requestId, frame] of this.#pending) {
        if (frame.ids[0] === first && frame.ids.length === event.job_ids?.length) {
          this.#pending.delete(requestId);
          for (const id of frame.ids) this.acknowledged.add(id);
          break;
        }
      }
    } else if (event.type === "error") {
      this.errorReplies++;
      const error = (event as { error?: { code?: string; message?: string } }).error;
      const kind = `${error?.code ?? "?"}: ${(error?.message ?? "").replace(/[0-9a-f]{16,}|\d+/g, "#").slice(0, 120)}`;
      this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
      const requestId = event.request_id ?? "";
      const frame = this.#pending.get(requestId);
      const submit = this.#submits.get(requestId);
      // As the README tells clients: the job was accepted, its subscription was not; subscribe to it.
      const unsubscribed = this.#answeredSubmits.get(requestId);
      if (unsubscribed !== undefined) this.#subscribe([unsubscribed]);
      // A transient failure (DynamoDB refused): ask again shortly.
      setTimeout(() => {
        if (frame && this.#pending.get(requestId) === frame) this.#sendFrame(requestId, frame);
        if (submit && this.#submits.get(requestId) === submit) this.#sendSubmit(requestId, submit);
      }, 200 + this.#options.random() * 800);
    } else if (event.type?.startsWith("job.")) {
      const submit = event.request_id === undefined ? undefined : this.#submits.get(event.request_id);
      const jobId = event.job?.job_id;
      if (submit && jobId) {
        this.#submits.delete(event.request_id ?? "");
        this.#answeredSubmits.set(event.request_id ?? "", jobId);
        this.jobs.add(jobId);
        submit.accepted(jobId);
      }
      const status = event.job?.status;
      if (status && isTerminalStatus(status)) this.finalEvents++;
      // As the README tells clients: an event whose version is not above the last applied is dropped.
      if (this.order.observe(event) && jobId && status) {
        this.tracker.observe(jobId, status);
        if (isTerminalStatus(status)) this.finalStatus.set(jobId, status);
      }
    }
    this.#onChange?.();
  }
}

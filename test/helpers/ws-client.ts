import WebSocket from "ws";
import { JobEventOrder } from "#shared/core/event-order";

export type Event = { readonly type: string; readonly [key: string]: unknown };

/**
 * A real WebSocket client that keeps every event and lets a test wait for the ones it expects.
 * `applied` keeps those a client applies under the version rule (README, "Ordered events").
 */
export class EventClient {
  readonly events: Event[] = [];
  readonly applied: Event[] = [];
  readonly #order = new JobEventOrder();
  readonly #socket: WebSocket;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on("message", (data) => {
      const event = JSON.parse(String(data)) as Event;
      this.events.push(event);
      if (this.#order.accept(event)) this.applied.push(event);
      for (const wake of this.#waiters) wake();
    });
  }

  static connect(url: string, token: string): Promise<EventClient> {
    return EventClient.#open(`${url}?token=${encodeURIComponent(token)}`);
  }

  static connectWithTicket(url: string, ticket: string): Promise<EventClient> {
    return EventClient.#open(`${url}?ticket=${encodeURIComponent(ticket)}`);
  }

  static async #open(address: string): Promise<EventClient> {
    const socket = new WebSocket(address);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
      socket.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return new EventClient(socket);
  }

  send(message: object): void {
    this.#socket.send(JSON.stringify(message));
  }

  /** Sends a frame as it is: any text, or bytes as a binary frame. */
  sendRaw(frame: string | Buffer): void {
    this.#socket.send(frame);
  }

  /** Whether the socket is still open. */
  get open(): boolean {
    return this.#socket.readyState === WebSocket.OPEN;
  }

  /** Resolves with the events once `done(events)` holds; fails with what arrived after the deadline. */
  waitUntil(done: (events: readonly Event[]) => boolean, timeoutMs = 60_000): Promise<readonly Event[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done(this.events)) return;
        cleanup();
        resolve(this.events);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms; events so far: ${JSON.stringify(this.events).slice(0, 2000)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  close(): void {
    this.#socket.close();
  }
}

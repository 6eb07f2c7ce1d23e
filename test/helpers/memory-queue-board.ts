import type { Lane } from "#shared/core/lanes";
import { emptyBoard, type BoardReport, type LaneCounts, type QueueBoard, type RateWindow, type SentEstimate, type StartRate } from "#shared/core/queue-position";
import type { QueueBoardStore, QueueWatch } from "#shared/ports";

type StoredWatch = { -readonly [K in keyof QueueWatch]: QueueWatch[K] } & { expiresAtMs: number; lastSentMs?: number };

/** The queue board in memory, as the DynamoDB store behaves: counters per lane, watches by job. */
export class MemoryQueueBoard implements QueueBoardStore {
  readonly boards = new Map<string, QueueBoard>();
  readonly watched = new Map<string, Map<string, StoredWatch>>();

  async read(route: string): Promise<QueueBoard> {
    return this.boards.get(route) ?? emptyBoard;
  }

  async takeTickets(route: string, lane: Lane, count: number): Promise<QueueBoard> {
    const board = await this.read(route);
    return this.#set(route, { ...board, submitted: { ...board.submitted, [lane]: board.submitted[lane] + count } });
  }

  async depart(route: string, departed: LaneCounts, report: BoardReport): Promise<QueueBoard> {
    const board = await this.read(route);
    return this.#set(route, {
      ...board,
      departed: { interactive: board.departed.interactive + departed.interactive, batch: board.departed.batch + departed.batch },
      service: report.service ?? board.service,
      window: board.window && report.backlogged ? { ...board.window, backlogged: true } : board.window,
      latency: report.latency ?? board.latency,
    });
  }

  async settleLane(route: string, lane: Lane, submitted: number): Promise<boolean> {
    const board = await this.read(route);
    if (board.submitted[lane] !== submitted || board.departed[lane] === submitted) return false;
    this.#set(route, { ...board, departed: { ...board.departed, [lane]: submitted } });
    return true;
  }

  async closeRateWindow(route: string, closing: RateWindow | undefined, rate: StartRate | undefined, next: RateWindow): Promise<void> {
    const board = await this.read(route);
    if (board.window?.startedMs !== closing?.startedMs) return;
    this.#set(route, { ...board, window: next, rate: rate ?? board.rate });
  }

  async watch(route: string, watch: Omit<QueueWatch, "connections" | "lastSent">, connectionId: string, expiresAt: Date, told?: { readonly sent: SentEstimate; readonly at: Date }): Promise<void> {
    const watches = this.watched.get(route) ?? new Map<string, StoredWatch>();
    this.watched.set(route, watches);
    const stored = watches.get(watch.jobId);
    const connections = [...new Set([...(stored?.connections ?? []), connectionId])];
    const sent = told && { lastSent: told.sent, lastSentMs: told.at.getTime() };
    watches.set(watch.jobId, { ...stored, ...watch, connections, expiresAtMs: expiresAt.getTime(), ...sent });
  }

  async flagWatched(route: string, until: Date): Promise<void> {
    this.#set(route, { ...(await this.read(route)), watchedUntilMs: until.getTime() });
  }

  async watches(route: string): Promise<readonly QueueWatch[]> {
    return [...(this.watched.get(route)?.values() ?? [])].map(({ expiresAtMs: _expires, lastSentMs: _sent, ...watch }) => watch);
  }

  async noteSent(route: string, jobId: string, sent: SentEstimate, now: Date, minGapMs: number): Promise<boolean> {
    const watch = this.watched.get(route)?.get(jobId);
    if (!watch || (watch.lastSentMs !== undefined && watch.lastSentMs > now.getTime() - minGapMs)) return false;
    watch.lastSent = sent;
    watch.lastSentMs = now.getTime();
    return true;
  }

  async rewatchAt(route: string, jobId: string, version: number): Promise<void> {
    const watch = this.watched.get(route)?.get(jobId);
    if (watch && (watch.version ?? -1) < version) watch.version = version;
  }

  async unwatch(route: string, jobIds: readonly string[]): Promise<void> {
    for (const jobId of jobIds) this.watched.get(route)?.delete(jobId);
  }

  #set(route: string, board: QueueBoard): QueueBoard {
    this.boards.set(route, board);
    return board;
  }
}

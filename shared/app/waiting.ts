import { waitingEvent, type WaitingEvent } from "../core/events.ts";
import type { JobRecord, JobView } from "../core/jobs.ts";
import { toJobView, versionOf } from "../core/jobs.ts";
import { changedMaterially, estimateQueue, type QueueBoard, type QueueEstimate, type QueueTicket } from "../core/queue-position.ts";
import type { RouteCatalog } from "../core/routes.ts";
import type { Clock, Connection, QueueBoardStore, QueueWatch } from "../ports.ts";
import type { Logger } from "./logger.ts";
import { postToConnections, type NotifyDeps } from "./notify.ts";

/**
 * What the callers of a waiting job see of its place in line (core/queue-position.ts): its
 * estimate with the job (submit, GET, subscribe), and `job.waiting` events while it moves.
 * Estimates are best-effort: a board that cannot be read leaves the job's view without one.
 */
export type WaitingDeps = {
  readonly catalog: RouteCatalog;
  readonly queueBoard: QueueBoardStore;
  readonly clock: Clock;
  readonly logger: Logger;
};

/** A watched job's watchers hear of it at most this often, whichever batcher tells them. */
export const WAITING_EVENT_GAP_MS = 1_000;

type WaitingShape = { readonly route: string; readonly ticket: QueueTicket; readonly promptTokens: number; readonly maxTokens: number };

const shapeOf = (job: JobRecord): WaitingShape | undefined =>
  job.status === "QUEUED" && job.lane !== undefined && job.ticket !== undefined
    ? { route: job.model, ticket: { lane: job.lane, ticket: job.ticket }, promptTokens: job.prompt_tokens, maxTokens: job.request.max_tokens }
    : undefined;

function estimate(deps: Pick<WaitingDeps, "catalog" | "clock">, shape: WaitingShape, board: QueueBoard): QueueEstimate | undefined {
  const route = deps.catalog.routes.get(shape.route);
  if (!route) return undefined;
  return estimateQueue({
    nowMs: deps.clock.now().getTime(),
    board,
    ticket: shape.ticket,
    job: { promptTokens: shape.promptTokens, maxTokens: shape.maxTokens },
    components: route.components,
    maxInFlightPerCopy: route.limits.max_sequences,
  });
}

/** The estimate of a job from a board read at or after its ticket; undefined unless it waits. */
export function estimateOf(deps: Pick<WaitingDeps, "catalog" | "clock">, job: JobRecord, board: QueueBoard): QueueEstimate | undefined {
  const shape = shapeOf(job);
  return shape && estimate(deps, shape, board);
}

async function readBoard(deps: WaitingDeps, route: string): Promise<QueueBoard | undefined> {
  try {
    return await deps.queueBoard.read(route);
  } catch (error) {
    deps.logger.warn("could not read the queue board; the job's view goes without its estimate", { route, error: String(error) });
    return undefined;
  }
}

/** A job's view, with its place in line while it waits: one read of its route's board. */
export async function viewOf(deps: WaitingDeps, job: JobRecord): Promise<JobView> {
  if (!shapeOf(job)) return toJobView(job);
  const board = await readBoard(deps, job.model);
  return toJobView(job, board && estimateOf(deps, job, board));
}

/** A WebSocket connection connected this long is closed by API Gateway: no watch outlives it. */
const WATCH_TTL_MS = 2 * 3600 * 1000;
/** The board's watch flag is pushed further only when it would end within this: not on every watch. */
const FLAG_SLACK_MS = 30 * 60 * 1000;

/** The boards of the routes of the jobs that wait: one read per route; a board it cannot read is left out. */
export async function boardsOf(deps: WaitingDeps, jobs: readonly JobRecord[]): Promise<Map<string, QueueBoard>> {
  const routes = [...new Set(jobs.filter((job) => shapeOf(job)).map((job) => job.model))];
  const boards = await Promise.all(routes.map(async (route) => [route, await readBoard(deps, route)] as const));
  return new Map(boards.flatMap(([route, board]) => (board ? [[route, board] as const] : [])));
}

/**
 * Watches the connection's waiting jobs: the batchers send it `job.waiting` as they move. `boards`:
 * what the caller read of their routes' boards, to flag them only where their flag runs out soon,
 * and to give the estimate the caller sends now, which the next one waits a second after.
 * A watch that cannot be written leaves the job with its other events. Returns the job.waiting
 * events to send now, by job, indexed at the time the watch records them as told.
 */
export async function watchWaiting(deps: WaitingDeps, connection: Connection, jobs: readonly JobRecord[], boards: ReadonlyMap<string, QueueBoard>): Promise<Map<string, WaitingEvent>> {
  const now = deps.clock.now();
  const expiresAt = new Date(now.getTime() + WATCH_TTL_MS);
  const events = new Map<string, WaitingEvent>();
  const waiting = jobs.flatMap((job) => {
    const shape = shapeOf(job);
    return shape ? [{ job, shape }] : [];
  });
  const routesToFlag = [...new Set(waiting.map((w) => w.shape.route))].filter((route) => (boards.get(route)?.watchedUntilMs ?? 0) < expiresAt.getTime() - FLAG_SLACK_MS);
  const writes = [
    ...waiting.map(({ job, shape }) => {
      const watch = { jobId: job.job_id, lane: shape.ticket.lane, ticket: shape.ticket.ticket, promptTokens: shape.promptTokens, maxTokens: shape.maxTokens, version: versionOf(job) };
      const board = boards.get(shape.route);
      const queue = board && estimate(deps, shape, board);
      if (queue) events.set(job.job_id, waitingEvent(job, queue, now));
      const told = queue && { sent: { position: queue.position, startMs: Date.parse(queue.estimated_start_at) }, at: now };
      return deps.queueBoard.watch(shape.route, watch, connection.connection_id, expiresAt, told);
    }),
    ...routesToFlag.map((route) => deps.queueBoard.flagWatched(route, expiresAt)),
  ];
  for (const result of await Promise.allSettled(writes)) {
    if (result.status === "rejected") deps.logger.warn("could not watch a waiting job; its subscriber gets its other events", { error: String(result.reason) });
  }
  return events;
}

export type TellWatchersDeps = WaitingDeps & NotifyDeps;

/**
 * Sends `job.waiting` to the watchers of a route's waiting jobs whose estimate moved materially,
 * at most once a second per job across batchers (the store's noteSent), and forgets the watches
 * of jobs whose ticket the departures reached: they left the line, or are about to. No job is
 * read: the event carries the version the job waited at when it was watched, so a client drops
 * one that comes after the job's `job.running` (a higher version; README, "Ordered events").
 * Where a read of the job per event was most of a single job's `GetItem`s (issue 18).
 */
export async function tellWatchers(deps: TellWatchersDeps, route: string, board: QueueBoard): Promise<void> {
  const now = deps.clock.now();
  if (board.watchedUntilMs === undefined || board.watchedUntilMs <= now.getTime()) return;
  const watches = await deps.queueBoard.watches(route);
  const left: string[] = [];
  await Promise.all(
    watches.map(async (watch) => {
      const queue = estimate(deps, shapeOfWatch(route, watch), board);
      if (!queue) return;
      const sent = { position: queue.position, startMs: Date.parse(queue.estimated_start_at) };
      const moved = changedMaterially(watch.lastSent, sent, now.getTime());
      if (watch.ticket <= board.departed[watch.lane]) {
        left.push(watch.jobId);
        return;
      }
      if (!moved) return;
      if (!(await deps.queueBoard.noteSent(route, watch.jobId, sent, now, WAITING_EVENT_GAP_MS))) return;
      await postToConnections(deps, watch.connections, waitingEvent({ job_id: watch.jobId, version: watch.version }, queue, now));
    }),
  );
  if (left.length > 0) await deps.queueBoard.unwatch(route, left);
}

const shapeOfWatch = (route: string, watch: QueueWatch): WaitingShape => ({
  route,
  ticket: { lane: watch.lane, ticket: watch.ticket },
  promptTokens: watch.promptTokens,
  maxTokens: watch.maxTokens,
});

/**
 * Counts jobs that took a ticket and left the line without starting (a submit that failed, a
 * cancel) as gone from it, so that the jobs behind them stop counting them ahead. Best-effort: a
 * count it cannot make leaves later estimates a little long.
 */
export async function leaveLine(deps: Pick<WaitingDeps, "queueBoard">, jobs: readonly JobRecord[]): Promise<void> {
  const byRoute = Map.groupBy(jobs.filter((j) => j.lane !== undefined && j.ticket !== undefined), (j) => j.model);
  await Promise.allSettled(
    [...byRoute].map(([route, left]) => {
      const departed = { interactive: left.filter((j) => j.lane === "interactive").length, batch: left.filter((j) => j.lane === "batch").length };
      return deps.queueBoard.depart(route, departed, { backlogged: false });
    }),
  );
}

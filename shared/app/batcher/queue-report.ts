import { capacityOf, type Load } from "../../core/gpu-batch-policy.ts";
import type { LatencyFactor } from "../../core/hold-measurements.ts";
import type { DriftFactors } from "../../core/profile-drift.ts";
import type { Lane } from "../../core/lanes.ts";
import type { RouteSettings } from "../../core/route-settings.ts";
import type { Component } from "../../core/routes.ts";
import { closeRateWindow, noCounts, type LaneCounts, type QueueBoard, type ServiceReport } from "../../core/queue-position.ts";
import { tellWatchers } from "../waiting.ts";
import type { BatcherDeps } from "./types.ts";

/**
 * Reports at most this often: the jobs the batcher took out of line since its last report, and the
 * copies' service. One UpdateItem per report, whatever the jobs a second, so the place-in-line
 * counters cost a batcher at most half a write a second.
 */
export const QUEUE_REPORT_EVERY_MS = 2_000;

/** What the batcher sees of the route's copies, for a report; `latency`: its static batches' factor, if it measured a newer one. */
export type ServiceState = { readonly service: ServiceReport; readonly backlogged: boolean; readonly latency?: LatencyFactor | undefined };

/** Copies holding this share of their sequences or KV tokens are full: what is queued waits for room. */
const FULL_SHARE = 0.9;

/**
 * The route's copies as a batcher sees them: their room, what every batcher holds, and whether
 * jobs wait for room: held by a batcher, or in the queue while the copies are full (a rolling
 * engine's batcher takes from the queue only what fits, so a backlog stays in SQS). Only then is
 * the rate jobs start at the copies' rate.
 */
export function serviceStateOf(input: {
  readonly nowMs: number;
  readonly components: readonly Component[];
  readonly settings: RouteSettings;
  readonly heldOn: (component: string) => Load;
  readonly jobsWaitingForRoom: boolean;
  /** The correction in force on the first component's profile (DriftSync), for the ETAs. */
  readonly profileFactors?: DriftFactors | undefined;
}): ServiceState {
  const sum = (of: (c: Component) => number) => input.components.reduce((total, c) => total + of(c), 0);
  const service = {
    atMs: input.nowMs,
    copies: sum((c) => c.copies),
    slots: sum((c) => capacityOf(c, input.settings).sequences),
    held: sum((c) => input.heldOn(c.name).sequences),
    tokens: sum((c) => capacityOf(c, input.settings).tokens),
    heldTokens: sum((c) => input.heldOn(c.name).tokens),
    ...(input.profileFactors && { profileFactors: input.profileFactors }),
  };
  const full = service.held >= FULL_SHARE * service.slots || service.heldTokens >= FULL_SHARE * service.tokens;
  return { service, backlogged: input.jobsWaitingForRoom || full };
}

/**
 * Counts the jobs a batcher takes out of its route's line (started for the first time, or ended
 * before starting) and reports them to the route's queue board with the copies' service; then
 * closes the start-rate window when due and tells the watchers of waiting jobs that moved.
 * Best-effort: a report that fails keeps its counts for the next.
 */
export class QueueReporter {
  readonly #deps: BatcherDeps;
  readonly #route: string;
  #departed: Record<Lane, number> = { ...noCounts };
  /** Lanes found empty, each with its tickets handed out as of the last board read before. */
  readonly #emptied = new Map<Lane, number>();
  #lastBoard: QueueBoard | undefined;
  #lastReportMs = Number.NEGATIVE_INFINITY;
  /** The profile correction the last report carried. */
  #reportedFactors: DriftFactors | undefined;
  #reporting: Promise<void> | undefined;
  /** Told of the board each report reads back. */
  readonly #onBoard: ((board: QueueBoard) => void) | undefined;

  constructor(deps: BatcherDeps, route: string, onBoard?: (board: QueueBoard) => void) {
    this.#deps = deps;
    this.#route = route;
    this.#onBoard = onBoard;
  }

  departed(lane: Lane): void {
    this.#departed[lane]++;
  }

  /**
   * What the run saw of a lane's queue: `empty`, nothing visible while it held none of the lane's
   * jobs unstarted. Every ticket of the last board read before then was handed to a job that has
   * left the line, or to none: the next report settles the lane there (QueueBoardStore.settleLane)
   * if no ticket was taken since and the departures differ, so that tickets that never became a
   * queued job (a submit killed, or refused after its take) stop counting ahead. Jobs other
   * batchers held unstarted then are counted out again at their start: positions read that many
   * short until the lane is next found empty.
   */
  laneSeen(lane: Lane, empty: boolean): void {
    const submitted = this.#lastBoard?.submitted[lane];
    if (empty && submitted !== undefined) this.#emptied.set(lane, submitted);
    else this.#emptied.delete(lane);
  }

  /**
   * Reports if jobs left the line since the last report and that one is old enough; never waits
   * for it. Returns the report under way, for the run to await before it ends. The copies' service
   * rides along: while no job leaves, nobody waiting has moved, and a report older than
   * REPORT_FRESH_MS is not used.
   */
  maybeReport(nowMs: number, state: () => ServiceState): Promise<void> | undefined {
    if (this.#reporting || !this.#anyDeparted() || nowMs - this.#lastReportMs < QUEUE_REPORT_EVERY_MS) return undefined;
    return this.#start(nowMs, state());
  }

  /**
   * The last report of a run: what it took out of line since its last one, a latency factor it
   * measured since, or a profile correction other than the one it last reported (the ETAs' pace);
   * else only the settling of a lane found empty since, against the last board read.
   */
  async finish(state: () => ServiceState): Promise<void> {
    await this.#reporting;
    const last = state();
    const corrected = !sameFactors(last.service.profileFactors, this.#reportedFactors);
    if (this.#anyDeparted() || last.latency || corrected) return this.#start(this.#deps.clock.now().getTime(), last);
    if (!this.#lastBoard) return;
    for (const result of await Promise.allSettled(this.#settleEmptied(this.#lastBoard))) {
      if (result.status === "rejected") this.#deps.logger.warn("could not settle an empty lane's counts; a later run tries again", { route: this.#route, error: String(result.reason) });
    }
  }

  /** Settles each lane found empty that took no ticket since, as `board` reads, and whose departures differ; forgets them. */
  #settleEmptied(board: QueueBoard): Promise<boolean>[] {
    const due = [...this.#emptied].filter(([lane, submitted]) => board.submitted[lane] === submitted && board.departed[lane] !== submitted);
    this.#emptied.clear();
    return due.map(([lane, submitted]) => this.#deps.queueBoard.settleLane(this.#route, lane, submitted));
  }

  #anyDeparted(): boolean {
    return this.#departed.interactive + this.#departed.batch > 0;
  }

  #start(nowMs: number, state: ServiceState): Promise<void> {
    this.#lastReportMs = nowMs;
    this.#reportedFactors = state.service.profileFactors;
    const reporting = this.#report(nowMs, state).finally(() => {
      this.#reporting = undefined;
    });
    this.#reporting = reporting;
    return reporting;
  }

  async #report(nowMs: number, state: ServiceState): Promise<void> {
    const departed: LaneCounts = this.#departed;
    this.#departed = { ...noCounts };
    let board: QueueBoard;
    try {
      board = await this.#deps.queueBoard.depart(this.#route, departed, state);
    } catch (error) {
      this.#departed = { interactive: this.#departed.interactive + departed.interactive, batch: this.#departed.batch + departed.batch };
      this.#deps.logger.warn("could not report the route's queue; positions lag until the next report", { route: this.#route, error: String(error) });
      return;
    }
    this.#lastBoard = board;
    this.#onBoard?.(board);
    const closing = closeRateWindow(board, nowMs);
    const followUps = await Promise.allSettled([
      closing && this.#deps.queueBoard.closeRateWindow(this.#route, board.window, closing.rate, closing.next),
      tellWatchers(this.#deps, this.#route, board),
      ...this.#settleEmptied(board),
    ]);
    for (const result of followUps) {
      if (result.status === "rejected") this.#deps.logger.warn("could not update the start rate or tell watchers; the next report tries again", { route: this.#route, error: String(result.reason) });
    }
  }
}

const sameFactors = (a: DriftFactors | undefined, b: DriftFactors | undefined): boolean => a?.decode === b?.decode && a?.prefill === b?.prefill;

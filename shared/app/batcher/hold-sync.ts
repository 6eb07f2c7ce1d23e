import { holdArrivalsPerMs, latencyFactorAt, updateArrivalRate, updateLatencyFactor, type ArrivalRate, type LatencyFactor } from "../../core/hold-measurements.ts";
import { staticBatchMs } from "../../core/latency-model.ts";
import type { PackItem } from "../../core/packing.ts";
import { getProfile } from "../../core/profiles.ts";
import type { QueueBoard } from "../../core/queue-position.ts";
import type { Component } from "../../core/routes.ts";
import type { QueueBoardStore } from "../../ports.ts";
import type { Logger } from "../logger.ts";

/**
 * This batcher's side of what the static-batch hold measures (core/hold-measurements.ts): the
 * route's arrival rate from the queue board's ticket counter, read at the run's start and with
 * each of its reports, and the latency factor from its own static batches, started from the
 * route's and reported back for the next invocation. Off (`measured` false) the hold sees what
 * it did before: this batcher's own pulls, and the latency model as calibrated.
 */
export class HoldSync {
  readonly #board: QueueBoardStore;
  readonly #logger: Logger;
  readonly #route: string;
  readonly #measured: boolean;
  #arrivals: ArrivalRate | undefined;
  #latency: LatencyFactor | undefined;
  /** The last sample of the factor this batcher reported: it reports only a newer one. */
  #reportedAtMs = Number.NEGATIVE_INFINITY;

  constructor(deps: { readonly queueBoard: QueueBoardStore; readonly logger: Logger }, route: string, measured: boolean) {
    this.#board = deps.queueBoard;
    this.#logger = deps.logger;
    this.#route = route;
    this.#measured = measured;
  }

  /** The route's board before the first decision: a fresh invocation starts from the route's figures. */
  async readBoard(nowMs: () => number): Promise<void> {
    if (!this.#measured) return;
    try {
      this.noteBoard(await this.#board.read(this.#route), nowMs());
    } catch (error) {
      this.#logger.warn("could not read the route's queue board; the hold counts on this batcher's own pulls until its first report", { route: this.#route, error: String(error) });
    }
  }

  /** A board read back (at the start, or after a report): its tickets, and the route's factor if newer than this batcher's. */
  noteBoard(board: QueueBoard, nowMs: number): void {
    if (!this.#measured) return;
    this.#arrivals = updateArrivalRate(this.#arrivals, board, nowMs);
    if (board.latency && board.latency.atMs > (this.#latency?.atMs ?? Number.NEGATIVE_INFINITY)) {
      this.#latency = board.latency;
      this.#reportedAtMs = board.latency.atMs;
    }
  }

  /** A static batch the copy answered in full: its time from the call to the answer against the model's. */
  noteBatch(component: Component, measuredMs: number, jobs: readonly PackItem[], nowMs: number): void {
    if (!this.#measured) return;
    const predictedMs = staticBatchMs(getProfile(component.profile), jobs.map((j) => ({ promptTokens: j.promptTokens, newTokens: j.maxNewTokens })));
    this.#latency = updateLatencyFactor(this.#latency, { measuredMs, predictedMs, atMs: nowMs });
  }

  /** The factor for the next report, if this batcher measured one since its last. */
  toReport(): LatencyFactor | undefined {
    const latency = this.#latency;
    if (!latency || latency.atMs <= this.#reportedAtMs) return undefined;
    this.#reportedAtMs = latency.atMs;
    return latency;
  }

  /** The hold's inputs now, as plain numbers for decideNext. */
  inputs(nowMs: number, pulled: number, sinceMs: number): { readonly arrivalsPerMs: number; readonly latencyFactor: number } {
    return {
      arrivalsPerMs: holdArrivalsPerMs({ nowMs, route: this.#arrivals, pulled, sinceMs }),
      latencyFactor: latencyFactorAt(this.#latency, nowMs),
    };
  }
}

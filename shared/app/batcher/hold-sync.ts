import { holdArrivalsPerMs, latencyFactorAt, updateArrivalRate, updateLatencyFactor, type ArrivalRate, type LatencyFactor } from "../../core/hold-measurements.ts";
import { staticBatchMs } from "../../core/latency-model.ts";
import type { PackItem } from "../../core/packing.ts";
import type { DriftSample } from "../../core/profile-drift.ts";
import type { QueueBoard } from "../../core/queue-position.ts";
import type { Component } from "../../core/routes.ts";
import type { QueueBoardStore } from "../../ports.ts";
import type { Logger } from "../logger.ts";

/** A static call being timed: whether the copy was seen shared while it ran. */
export type TimedCall = { readonly component: Component; shared: boolean };

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
  readonly #calls = new Set<TimedCall>();

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

  /** A static call starting on `component`; `shared`: the ledger already shows more on its copies than they run at once. */
  beginCall(component: Component, shared: boolean): TimedCall {
    const call = { component, shared };
    this.#calls.add(call);
    return call;
  }

  /**
   * After a ledger read: a call whose component the ledger shows holding more than its copies run
   * at once shared its copy with another batcher's batch (their starts crossed between ledger
   * reads), and waited behind it in the container: its time is not the GPU's pace.
   */
  noteShared(overfull: (component: Component) => boolean): void {
    for (const call of this.#calls) call.shared ||= overfull(call.component);
  }

  /**
   * A static batch the copy answered in full: its time from the call to the answer against the
   * model's, unless it shared the copy. The hold's factor counts it against its max new tokens;
   * returned, for the profile's drift (DriftSync), against what the batch generated.
   */
  noteBatch(call: TimedCall, measuredMs: number, jobs: readonly PackItem[], generatedTokens: readonly number[], nowMs: number): DriftSample | undefined {
    this.#calls.delete(call);
    if (call.shared) return undefined;
    const { latency } = call.component;
    const ran = jobs.map((j, i) => ({ promptTokens: j.promptTokens, newTokens: generatedTokens[i] ?? j.maxNewTokens }));
    if (this.#measured) {
      const predictedMs = staticBatchMs(latency, jobs.map((j) => ({ promptTokens: j.promptTokens, newTokens: j.maxNewTokens })));
      this.#latency = updateLatencyFactor(this.#latency, { measuredMs, predictedMs, atMs: nowMs });
    }
    return { measuredMs, predictedMs: staticBatchMs(latency, ran) };
  }

  /** The call ended, timed or not. */
  endCall(call: TimedCall): void {
    this.#calls.delete(call);
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

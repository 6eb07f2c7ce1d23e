import type { BatchControlDeps } from "../batch-progress.ts";
import type { JobMessage } from "../../core/jobs.ts";
import type { Lane } from "../../core/lanes.ts";
import type { PackItem } from "../../core/packing.ts";
import type { Component, RouteCatalog } from "../../core/routes.ts";
import type { BatchStore, CapacityLedger, Clock, FleetView, Ids, Invoker, JobQueue, JobStore, QueueBoardStore, RouteSettingsStore, Sleep, UsageMeter } from "../../ports.ts";
import type { Logger } from "../logger.ts";
import type { CostMeter } from "./cost-meter.ts";
import type { NotifyDeps } from "../notify.ts";

/**
 * One SQS message of a delivery: the batch of messages the event source mapping invoked the batcher
 * with. `lane`: the lane whose queue the mapping reads (left out: the batch lane, the route's queue
 * from before lanes).
 */
export type DeliveredMessage = { readonly messageId: string; readonly receiptHandle: string; readonly body: string; readonly lane?: Lane | undefined };

export type BatcherDeps = NotifyDeps & BatchControlDeps & {
  readonly catalog: RouteCatalog;
  readonly jobs: JobStore;
  /** To give back the slot of a job found ended (renotifyFinished): its ender may have died before it did. */
  readonly usage: UsageMeter;
  readonly batches: BatchStore;
  readonly invoker: Invoker;
  readonly fleet: FleetView;
  readonly queue: JobQueue;
  readonly ledger: CapacityLedger;
  readonly routeSettings: RouteSettingsStore;
  readonly queueBoard: QueueBoardStore;
  readonly clock: Clock;
  readonly ids: Ids;
  readonly logger: Logger;
  readonly sleep: Sleep;
  readonly random: () => number;
};

export type DeliveryOptions = {
  /** Stop taking more work from the queue after this; what has not started by then is put back. */
  readonly topUpUntil: Date;
  /**
   * Past topUpUntil, keep taking more until this while no other batcher takes it for longer
   * (decideNext's topUpDeadline); default topUpUntil.
   */
  readonly topUpLatest?: Date | undefined;
};

export type DeliveryReport = {
  /** Ids of delivered messages to hand back to SQS (the event source mapping's batchItemFailures). */
  readonly retry: readonly string[];
  /** Jobs per call sent to dynamic-batch engines (rolling engines take one job per call). */
  readonly gpuBatchSizes: readonly number[];
  /** Messages the batcher pulled from the queues itself to keep the copies busy. */
  readonly pulled: number;
  /** Of them, from each lane. */
  readonly pulledByLane: Readonly<Record<Lane, number>>;
};

/** Where a job's message came from decides how it is acknowledged, and in which lane's queue. */
export type Source =
  | { readonly kind: "delivered"; readonly messageId: string; readonly receiptHandle: string; readonly body: string; readonly lane: Lane }
  | { readonly kind: "pulled"; readonly messageId: string; readonly receiptHandle: string; readonly body: string; readonly lane: Lane };

/** A job this run holds, not started yet; `receivedMs`: when the run got its message. */
export type Pending = { readonly source: Source; readonly message: JobMessage; readonly item: PackItem; readonly receivedMs: number };

export type Settlement =
  | { readonly kind: "done" }
  | { readonly kind: "retry"; readonly delaySeconds: number }
  /** `body`: the new message's, when it differs from the one received. */
  | { readonly kind: "requeue"; readonly delaySeconds: number; readonly body?: string | undefined };

/** What a GPU call needs from the run that launched it. */
export type RunHandle = {
  /** Acknowledges, retries or requeues a job's message once the job's state is durable. */
  settle(pending: Pending, outcome: Settlement): Promise<void>;
  /** Notes a batch whose counts changed: its subscribers get its progress within a second, and again at the run's end. */
  touched(batchId: string): void;
  /** Leaves a component that answered "not ready" alone for the route's warming recheck period. */
  componentWarming(component: Component): void;
  /** How long a job waits in the queue for a warming component before it is looked at again. */
  readonly warmingRecheckSeconds: number;
  /** The longest a job waits for its components to become ready, from its first wait. */
  readonly maxWarmingWaitSeconds: number;
  /** The last moment a GPU call may start and still answer before the batcher's time is up (a long generation hands over past it). */
  readonly lastCallStartMs: number;
  /** Counts a job out of its lane's line: it started for the first time, or ended before starting. */
  departed(lane: Lane): void;
  /** Shares the copies' cost among the run's calls. */
  readonly costs: CostMeter;
};

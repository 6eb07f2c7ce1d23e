import { packGpuBatches, type PackItem } from "./packing.ts";
import { LANES, type Lane } from "./lanes.ts";
import type { RouteSettings } from "./route-settings.ts";
import type { Component } from "./routes.ts";
import { addLoad, capacityOf, decideStaticBatch, demandOn, fits, noLoad, subtractLoad, type Load } from "./gpu-batch-policy.ts";
import { batchFitsUnderCap, batchUnderCap, withinRoomShare, type BatchRoomShare } from "./batch-lane-cap.ts";

/**
 * A job another batcher has held waiting for room this much longer than this batcher's oldest
 * goes first: this batcher starts nothing and pulls nothing until it has started. Without it, a
 * batcher whose copy frees takes the room again at once (it knows first), and the jobs another
 * invocation was delivered wait until their deadline. Counted from when a batcher got the job,
 * not from its submit: a backlog's jobs all wait long in SQS, and yielding over that would hand
 * every freed slot across batchers.
 */
export const YIELD_AFTER_MS = 1000;
/** Past the top-up deadline, jobs that still found no room go back to the queue after this. */
export const REQUEUE_GRACE_MS = 5_000;
/**
 * A top-up with nothing waiting long-polls this long (a whole second: SQS takes whole seconds),
 * so a message that arrives while the copies have room starts at once instead of on the next poll.
 */
export const TOP_UP_LONG_POLL_SECONDS = 1;
/**
 * Past its deadline a batcher hands the queues over to another that pulls at least this much
 * longer: a little over one ledger refresh, so that the other is seen to go on.
 */
export const HANDOVER_MARGIN_MS = 1_000;
/**
 * The batch lane stays capped this long after the batcher last saw interactive work on its
 * components: at 60 interactive jobs a minute (Poisson, each ~3.5 s on the GPU) a copy is without
 * one for a moment now and then, and a batch refilling the copy then would slow the next ones for
 * the ~10 s its jobs run. A gap with no arrival for 10 s at one a second comes e^-10 of the time.
 */
export const INTERACTIVE_MEMORY_MS = 10_000;
/**
 * After an empty receive that did not wait, wait this long before asking that lane again. The
 * interactive lane's is longer: its own event source mapping long-polls it and delivers its jobs
 * to a fresh invocation, which the batch holders yield to at once, so a batcher draining the
 * batch lane only looks in now and then (at most one receive a second) rather than five times.
 */
export const EMPTY_LANE_BACKOFF_MS: Readonly<Record<Lane, number>> = { interactive: 1000, batch: 200 };
/** The longest the loop waits with nothing to wake it: keeps top-up and holds responsive. */
export const IDLE_TICK_MS = 100;
/** SQS hands out at most this many messages per receive. */
const MAX_RECEIVE = 10;

/** A job the batcher holds, not started yet; `receivedMs`: when the batcher got its message; `lane`: the queue it came from. */
export type WaitingJob = { readonly item: PackItem; readonly samplingKey: string; readonly receivedMs: number; readonly lane: Lane };

/** What the batcher knows of one lane's queue from its own receives. */
export type LaneQueueState = {
  /** An empty receive that did not wait: the lane is not asked again before this. */
  readonly emptyUntilMs: number;
  /** The last receive took all it asked for: more may wait in the lane. */
  readonly mayHaveMore: boolean;
  /** A receive came back empty since the batcher last waited: not asked again until it has. */
  readonly answeredEmpty: boolean;
};

/** A component as the batcher sees it: the copies it runs now and what every batcher holds on it. */
export type ComponentState = {
  readonly component: Component;
  /** The load all batchers hold on it: this one's and the others' from the ledger. */
  readonly held: Load;
  /** The part of `held` that interactive-lane jobs hold (default none). */
  readonly interactiveHeld?: Load;
  /** Until when it is left alone because it answered "warming" (0: it is not). */
  readonly warmingUntilMs: number;
  /** This batcher's part of the room under the batch lane's cap (default: all of it, as when it alone decides). */
  readonly batchRoomShare?: BatchRoomShare;
};

/** Everything the next step depends on, as plain data: no clock, no I/O. */
export type BatcherSnapshot = {
  readonly nowMs: number;
  readonly settings: RouteSettings;
  readonly components: readonly ComponentState[];
  /** Jobs not started yet, most urgent first. */
  readonly waiting: readonly WaitingJob[];
  readonly callsInFlight: number;
  /** When another batcher got the oldest job it holds waiting for room on these components. */
  readonly othersOldestWaitingMs: number | undefined;
  /** Whether another batcher holds an interactive-lane job waiting for room on these components. */
  readonly othersInteractiveWaiting: boolean;
  /** Pull nothing more from the queue after this, unless no other batcher will (topUpDeadline); what has not started by then goes back. */
  readonly topUpUntilMs: number;
  /** Past topUpUntilMs, the latest it may still pull (what its finish reserve leaves); default topUpUntilMs. */
  readonly topUpLatestMs?: number | undefined;
  /** The latest another batcher pulls until, as the ledger says. */
  readonly othersTopUpUntilMs?: number | undefined;
  readonly queues: Readonly<Record<Lane, LaneQueueState>>;
  /** The batcher long-polled since it last waited: it does not again until it has. */
  readonly longPolledSinceIdle: boolean;
  /** A long poll of the interactive lane runs beside the loop (the "watch" step); default none. */
  readonly interactiveWatching?: boolean | undefined;
  /** Messages this batcher has taken from each lane with its own receives: what the batch lane's floor is counted on. */
  readonly receivedByLane: Readonly<Record<Lane, number>>;
  /** When the hold on a static batch ends; undefined while none is held. */
  readonly holdUntilMs: number | undefined;
  /** Jobs per ms arriving on the route, as measured (hold-measurements.ts): the arrival rate a hold can count on. */
  readonly arrivalsPerMs: number;
  /** Measured over predicted time of the route's static batches; default 1: the latency model as calibrated. */
  readonly latencyFactor?: number | undefined;
  /** When this batcher, or another as the ledger says, last saw interactive work on its components (interactiveWorkNow); undefined: never. */
  readonly interactiveSeenMs?: number | undefined;
};

/** One call to start: its component, its jobs, and the load it reserves there. */
export type PlannedCall = { readonly component: string; readonly jobIds: readonly string[]; readonly load: Load };

export type BatcherStep =
  /** Start these calls now; together they are one GPU batch (they reach the engines together). */
  | { readonly kind: "start"; readonly calls: readonly PlannedCall[] }
  /** Hold the static batch that would go now until `untilMs`, for a fuller one. */
  | { readonly kind: "hold"; readonly untilMs: number }
  /** Ask the lane's queue for up to `max` messages, waiting up to `waitSeconds` for the first. */
  | { readonly kind: "top-up"; readonly lane: Lane; readonly max: number; readonly waitSeconds: number }
  /** Long-poll the interactive lane for up to `max` messages beside the loop, which goes on: jobs wait here for room or the cap. */
  | { readonly kind: "watch"; readonly lane: "interactive"; readonly max: number; readonly waitSeconds: number }
  /** Every component is warming: the waiting jobs wait in the queue for `delaySeconds`, saying why. */
  | { readonly kind: "requeue"; readonly reason: "warming"; readonly delaySeconds: number }
  /** No room came before the top-up deadline and its grace: the waiting jobs go back as new messages. */
  | { readonly kind: "requeue"; readonly reason: "late" }
  /** Another batcher's job has waited longer: start nothing, pull nothing, wait. */
  | { readonly kind: "yield" }
  /** Nothing can start or be pulled now: wait for a call to finish, a hold to end or room to free. */
  | { readonly kind: "drain" }
  /** Nothing waits and nothing runs: the batcher's share of the delivery is over. */
  | { readonly kind: "done" };

/**
 * The batcher's next step. The executor carries it out, updates its state, and asks again until
 * the step is one that waits (yield, drain) or ends (done). The tuning simulator runs this same
 * function on a virtual clock.
 */
export function decideNext(s: BatcherSnapshot): BatcherStep {
  const warmingUntil = Math.min(...s.components.map((c) => c.warmingUntilMs));
  if (s.waiting.length > 0 && warmingUntil > s.nowMs) return { kind: "requeue", reason: "warming", delaySeconds: Math.ceil((warmingUntil - s.nowMs) / 1000) };
  const yielding = isYielding(s);
  if (!yielding) {
    const planned = isStaticBatching(s) ? planStaticBatch(s) : planRollingStarts(s);
    if (planned) return planned;
  }
  if (mayTopUp(s, yielding)) return topUp(s, yielding);
  if (s.waiting.length === 0 && s.callsInFlight === 0 && !s.interactiveWatching) return { kind: "done" };
  if (s.waiting.length > 0 && s.nowMs >= topUpDeadline(s) + REQUEUE_GRACE_MS) return { kind: "requeue", reason: "late" };
  if (mayWatch(s, yielding)) return watch(s);
  return yielding ? { kind: "yield" } : { kind: "drain" };
}

/**
 * Until when this batcher pulls from the queues: its own deadline or, past it, its latest while no
 * other batcher pulls for longer. Batchers that started together (the mapping's pollers, when
 * traffic starts) would otherwise stop together, and while each waits for its last GPU calls the
 * mapping can start no other (MaximumConcurrency): nobody takes the queue's new messages for a
 * whole generation. Of two batchers past their deadlines the one that may go on longer goes on;
 * a new one (whose own deadline lies past this one's latest) takes over.
 */
export function topUpDeadline(s: Pick<BatcherSnapshot, "nowMs" | "topUpUntilMs" | "topUpLatestMs" | "othersTopUpUntilMs">): number {
  const latest = s.topUpLatestMs ?? s.topUpUntilMs;
  if (s.nowMs < s.topUpUntilMs || latest <= s.topUpUntilMs) return s.topUpUntilMs;
  const theirs = s.othersTopUpUntilMs;
  const handedOver = theirs !== undefined && theirs > Math.max(s.nowMs + HANDOVER_MARGIN_MS, latest);
  return handedOver ? s.topUpUntilMs : latest;
}

/** When this batcher got its oldest job still waiting to start. */
export function oldestWaitingMs(waiting: readonly WaitingJob[]): number | undefined {
  return waiting.length === 0 ? undefined : Math.min(...waiting.map((w) => w.receivedMs));
}

/**
 * Whether another batcher's job must start first. An interactive job waiting elsewhere goes first
 * at once over a batcher that holds only batch work (the point of the lanes: a fresh invocation
 * delivered one interactive job gets the next room that frees, not the batch holder that learns of
 * it first), and a batcher with an interactive job never yields. Between batch holders, the job
 * that has waited over YIELD_AFTER_MS longer goes first.
 */
export function isYielding(s: Pick<BatcherSnapshot, "othersOldestWaitingMs" | "othersInteractiveWaiting" | "waiting" | "nowMs">): boolean {
  // Interactive work never yields: the ledger's oldest wait has no lane, and yielding to it made
  // two interactive holders yield to the batch holders' older jobs while those yielded to them.
  if (s.waiting.some((w) => w.lane === "interactive")) return false;
  if (s.othersInteractiveWaiting) return true;
  const theirs = s.othersOldestWaitingMs;
  return theirs !== undefined && theirs < (oldestWaitingMs(s.waiting) ?? s.nowMs) - YIELD_AFTER_MS;
}

/** Dynamic-batch engines run one static batch per copy at a time; the others batch as they go. */
function isStaticBatching(s: BatcherSnapshot): boolean {
  return s.components.some((c) => c.component.engine === "lmi-dynamic");
}

/** Sequences the components can still take, over all batchers. */
function freeSequences(s: BatcherSnapshot): number {
  return s.components.reduce((sum, c) => sum + Math.max(0, capacityOf(c.component, s.settings).sequences - c.held.sequences), 0);
}

/**
 * Whether the batcher may receive now. Not while it yields, but for the interactive lane while the
 * batch lane is capped and it yields only by age: the batch jobs another batcher holds waiting
 * then wait for the cap, not for room this one would take, and a yielding batcher that did not
 * poll the interactive lane left interactive jobs in SQS (the lanes bench: time to start p95 1 s
 * after the first 15 s, 0.1 s idle). What it takes from there never yields (isYielding).
 */
function mayTopUp(s: BatcherSnapshot, yielding: boolean): boolean {
  if (!s.settings.top_up || (yielding && !pullsInteractiveWhileYielding(s)) || s.nowMs >= topUpDeadline(s) || nextReceive(s, yielding) === undefined) return false;
  // What it pulled would only wait in the queue again.
  if (s.components.every((c) => c.warmingUntilMs > s.nowMs)) return false;
  return freeSequences(s) > s.waiting.length;
}

/** Whether the batcher may ask the lane now: it did not just come back empty, is not watched, and the batch lane is under its cap. */
function laneOpen(s: BatcherSnapshot, lane: Lane): boolean {
  const q = s.queues[lane];
  if (s.nowMs < q.emptyUntilMs || q.answeredEmpty) return false;
  return lane === "interactive" ? !s.interactiveWatching : batchLaneHasRoom(s);
}

/**
 * Whether to watch the interactive lane: jobs wait here (for room, or for the batch lane's cap),
 * so the loop may not block on a long poll, and the lane is not being asked otherwise. Without
 * the watch such a batcher looked in once a second (EMPTY_LANE_BACKOFF_MS), and an interactive job
 * that came meanwhile waited in SQS: the lanes bench's time to start p95 was 0.77 s with the cap at
 * 35%, 0.08 s idle. The watch costs no more receives than those looks: one long poll a second.
 */
function mayWatch(s: BatcherSnapshot, yielding: boolean): boolean {
  if (!s.settings.top_up || s.interactiveWatching || s.waiting.length === 0 || freeSequences(s) === 0) return false;
  if (yielding && !pullsInteractiveWhileYielding(s)) return false;
  return longPollFits(s);
}

/** A yielding batcher may still pull interactive-lane jobs while the batch lane is capped, unless another batcher's interactive job waits (mayTopUp). */
const pullsInteractiveWhileYielding = (s: BatcherSnapshot): boolean => !s.othersInteractiveWaiting && batchLaneCapped(s);

/** Whether a long poll ends before the batcher stops pulling. */
const longPollFits = (s: BatcherSnapshot): boolean => topUpDeadline(s) - s.nowMs >= TOP_UP_LONG_POLL_SECONDS * 1000;

function watch(s: BatcherSnapshot): BatcherStep {
  const interactiveWaiting = s.waiting.filter((w) => w.lane === "interactive").length;
  return { kind: "watch", lane: "interactive", max: Math.max(1, Math.min(MAX_RECEIVE, freeSequences(s) - interactiveWaiting)), waitSeconds: TOP_UP_LONG_POLL_SECONDS };
}

/**
 * Whether interactive work is on the batcher's components now: an interactive-lane job held
 * running by any batcher (the ledger), one waiting in this batcher, or one another batcher says waits.
 */
export function interactiveWorkNow(s: Pick<BatcherSnapshot, "components" | "waiting" | "othersInteractiveWaiting">): boolean {
  return s.othersInteractiveWaiting || s.waiting.some((w) => w.lane === "interactive") || s.components.some((c) => (c.interactiveHeld?.sequences ?? 0) > 0);
}

/**
 * Whether the batch lane is capped (batch-lane-cap.ts): while interactive work is around, and for
 * INTERACTIVE_MEMORY_MS after the batcher last saw some, so that the cap does not lift in the
 * gaps between arrivals. Without interactive work the batch lane fills the copies as before.
 */
export function batchLaneCapped(s: Pick<BatcherSnapshot, "components" | "waiting" | "othersInteractiveWaiting" | "nowMs" | "interactiveSeenMs">): boolean {
  if (interactiveWorkNow(s)) return true;
  return s.interactiveSeenMs !== undefined && s.nowMs - s.interactiveSeenMs < INTERACTIVE_MEMORY_MS;
}

/** The batch lane's load on a component, over every batcher. */
const batchHeldOf = (c: ComponentState): Load => subtractLoad(c.held, c.interactiveHeld ?? noLoad);

/**
 * Whether the batch lane may be asked for more: not capped, or some component's batch load with
 * this batcher's waiting batch jobs added is still under the cap. What it pulled past the cap
 * would only wait in the batcher.
 */
function batchLaneHasRoom(s: BatcherSnapshot): boolean {
  if (!batchLaneCapped(s)) return true;
  const waitingBatch = s.waiting.filter((w) => w.lane === "batch");
  return s.components.some((c) => {
    const waiting = waitingBatch.reduce((sum, w) => addLoad(sum, demandOn(w.item, c.component)), noLoad);
    return batchUnderCap(c.component, addLoad(batchHeldOf(c), waiting), s.settings.interactive_slowdown_percent);
  });
}

/**
 * Whether the batch lane is below its floor: less than `batch_lane_floor_percent` of the messages
 * this batcher received came from it. Counted in messages, so a lane that answers ten at a time
 * and one that answers one are weighed by what they bring.
 */
export function batchLaneOwed(s: Pick<BatcherSnapshot, "receivedByLane" | "settings">): boolean {
  const { interactive, batch } = s.receivedByLane;
  return batch * 100 < s.settings.batch_lane_floor_percent * (interactive + batch);
}

/**
 * The lane the next receive asks: the interactive lane first, the batch lane when the interactive
 * one just came back empty or while the batch lane is below its floor. Undefined: both came back empty.
 */
export function nextLane(s: BatcherSnapshot): Lane | undefined {
  const interactive = laneOpen(s, "interactive");
  const batch = laneOpen(s, "batch");
  if (interactive && batch) return batchLaneOwed(s) ? "batch" : "interactive";
  return interactive ? "interactive" : batch ? "batch" : undefined;
}

/**
 * The next receive: a look at the lane `nextLane` names, or, once both lanes came back empty and
 * nothing waits, one long poll of the interactive lane, so that an interactive job arriving while
 * the copies have room starts at once (its own mapping's pollers may all be busy: this batcher is
 * one of them). Never a long poll with jobs waiting: it would keep them from room that frees.
 */
function nextReceive(s: BatcherSnapshot, interactiveOnly = false): { readonly lane: Lane; readonly waitSeconds: number } | undefined {
  const lane = interactiveOnly ? (laneOpen(s, "interactive") ? "interactive" : undefined) : nextLane(s);
  if (lane) return { lane, waitSeconds: 0 };
  const mayWait = s.waiting.length === 0 && !s.longPolledSinceIdle && !s.interactiveWatching && longPollFits(s);
  return mayWait ? { lane: "interactive", waitSeconds: TOP_UP_LONG_POLL_SECONDS } : undefined;
}

/**
 * A receive. While the batch lane is capped, one batch message at a time: the cap admits a few
 * batch jobs, and ten pulled at once would wait in the batcher, which then never long-polls the
 * interactive lane (it does only with nothing waiting), so interactive jobs waited in SQS for its
 * next look (up to a second: route-run.ts, EMPTY_LANE_BACKOFF_MS). A receive of one costs what one of ten does.
 */
function topUp(s: BatcherSnapshot, interactiveOnly = false): BatcherStep {
  const { lane, waitSeconds } = nextReceive(s, interactiveOnly) ?? { lane: "interactive", waitSeconds: 0 };
  const most = lane === "batch" && batchLaneCapped(s) ? 1 : MAX_RECEIVE;
  return { kind: "top-up", lane, max: Math.min(most, freeSequences(s) - s.waiting.length), waitSeconds };
}

/** The component with the least load per copy that can take `demandAt(component)` (and passes `allowed`), if any. */
function placeFor(s: BatcherSnapshot, held: ReadonlyMap<string, Load>, demandAt: (component: Component) => Load, allowed: (component: Component) => boolean = () => true): Component | undefined {
  const anyRunning = s.components.some((c) => c.component.copies > 0);
  let best: Component | undefined;
  let bestLoad = Number.POSITIVE_INFINITY;
  for (const { component, warmingUntilMs } of s.components) {
    if (warmingUntilMs > s.nowMs || (component.copies === 0 && anyRunning)) continue;
    const load = held.get(component.name) ?? noLoad;
    if (!fits(capacityOf(component, s.settings), load, demandAt(component)) || !allowed(component)) continue;
    const perCopy = load.sequences / Math.max(1, component.copies);
    if (perCopy < bestLoad) {
      best = component;
      bestLoad = perCopy;
    }
  }
  return best;
}

const heldByName = (s: BatcherSnapshot) => new Map(s.components.map((c) => [c.component.name, c.held]));

/**
 * Rolling batch: one call per job, each as soon as a copy has room for it, most urgent first;
 * while the batch lane is capped, a batch-lane job only where the batch load stays under the cap.
 */
function planRollingStarts(s: BatcherSnapshot): BatcherStep | undefined {
  const held = heldByName(s);
  const capped = batchLaneCapped(s);
  const batchHeld = new Map(s.components.map((c) => [c.component.name, batchHeldOf(c)]));
  const shares = new Map(s.components.flatMap((c) => (c.batchRoomShare ? [[c.component.name, c.batchRoomShare] as const] : [])));
  const calls: PlannedCall[] = [];
  for (const job of s.waiting) {
    const underCap = (c: Component) => {
      if (!capped || job.lane !== "batch") return true;
      const held = batchHeld.get(c.name) ?? noLoad;
      const demand = demandOn(job.item, c);
      const share = shares.get(c.name);
      const percent = s.settings.interactive_slowdown_percent;
      return batchFitsUnderCap(c, held, demand, percent) && (!share || withinRoomShare(c, held, share, demand, percent));
    };
    const component = placeFor(s, held, (c) => demandOn(job.item, c), underCap);
    if (!component) break;
    const load = demandOn(job.item, component);
    held.set(component.name, addLoad(held.get(component.name) ?? noLoad, load));
    if (job.lane === "batch") {
      batchHeld.set(component.name, addLoad(batchHeld.get(component.name) ?? noLoad, load));
      const share = shares.get(component.name);
      if (share) shares.set(component.name, { ...share, startedSinceRead: addLoad(share.startedSinceRead, load) });
    }
    calls.push({ component: component.name, jobIds: [job.item.id], load });
  }
  return calls.length === 0 ? undefined : { kind: "start", calls };
}

/** Static batch: a copy runs one batch at a time, so a batch takes a whole copy's room. */
function planStaticBatch(s: BatcherSnapshot): BatcherStep | undefined {
  const first = s.waiting[0];
  if (!first) return undefined;
  const wholeCopy = (c: Component) => capacityOf({ ...c, copies: 1 }, s.settings);
  const component = placeFor(s, heldByName(s), wholeCopy);
  if (!component) return undefined;
  const group = s.waiting.filter((w) => w.samplingKey === first.samplingKey).map((w) => w.item);
  const profile = component.latency;
  const packs = packGpuBatches(group, { limits: component.limits, profile, oneRequestPerBatch: true });
  const batch = packs[0] ?? [];
  const full = packs.length > 1 || batch.length >= component.limits.max_sequences;
  const start: BatcherStep = { kind: "start", calls: [{ component: component.name, jobIds: batch.map((i) => i.id), load: wholeCopy(component) }] };
  if (full) return start;
  // A copy that just freed sizes its next batch on what waits in the queue too.
  if (LANES.some((lane) => s.queues[lane].mayHaveMore) && mayTopUp(s, false)) return topUp(s);
  if (s.holdUntilMs !== undefined) return s.nowMs < s.holdUntilMs ? undefined : start;
  const decision = decideStaticBatch({ batch, full, nowMs: s.nowMs, arrivalsPerMs: s.arrivalsPerMs, latencyFactor: s.latencyFactor, profile, settings: s.settings });
  return decision.kind === "wait" ? { kind: "hold", untilMs: s.nowMs + decision.forMs } : start;
}

import { LANES, type Lane } from "./lanes.ts";
import { decodeStepMs, prefillMs, staticBatchMs } from "./latency-model.ts";
import { demandOn } from "./gpu-batch-policy.ts";
import type { LatencyFactor } from "./hold-measurements.ts";
import { correctedProfile, type DriftFactors } from "./profile-drift.ts";
import type { Component } from "./routes.ts";

/**
 * A waiting job's place in its route's queues, and when it should start and finish.
 *
 * SQS tells no message its place, so the route keeps two counters per lane (docs/queue-position.md):
 * tickets handed out at submit, and jobs that left the queue (started for the first time, or
 * ended before starting). A job's ticket less the lane's departures is its place in the lane; every
 * job waiting in a higher lane goes before it too. The batchers also report how the copies serve:
 * their room, what they hold, and the starts a second measured while jobs waited for room.
 */
export type LaneCounts = Readonly<Record<Lane, number>>;
export const noCounts: LaneCounts = { interactive: 0, batch: 0 };

/** The route's copies as a batcher last saw them. */
export type ServiceReport = {
  readonly atMs: number;
  readonly copies: number;
  /** Sequences the copies admit at once, over all copies. */
  readonly slots: number;
  /** Sequences every batcher holds on them. */
  readonly held: number;
  /** KV tokens the copies admit at once, and those every batcher holds (absent in reports from before they were kept). */
  readonly tokens?: number | undefined;
  readonly heldTokens?: number | undefined;
  /** The correction of the route's first component's profile in force (DriftSync): ETAs use the profile it gives. Absent in reports from before it was kept. */
  readonly profileFactors?: DriftFactors | undefined;
};

/** What a batcher's report sets beside the departures it counts. */
export type BoardReport = { readonly service?: ServiceReport | undefined; readonly backlogged: boolean; readonly latency?: LatencyFactor | undefined };

/**
 * Jobs that left the queue a second, over the last closed window, and whether jobs waited for room
 * during it; `arrivalsPerSecond`: tickets taken a second over it (absent for a window opened
 * before it was counted).
 */
export type StartRate = { readonly perSecond: number; readonly backlogged: boolean; readonly atMs: number; readonly arrivalsPerSecond?: number | undefined };

/** The window the next start rate is counted over; `submittedAtStart`: the tickets taken when it opened, both lanes. */
export type RateWindow = { readonly startedMs: number; readonly departedAtStart: number; readonly backlogged: boolean; readonly submittedAtStart?: number | undefined };

export type QueueBoard = {
  readonly submitted: LaneCounts;
  readonly departed: LaneCounts;
  readonly service?: ServiceReport | undefined;
  readonly rate?: StartRate | undefined;
  readonly window?: RateWindow | undefined;
  /** Until when a client may be watching one of the route's waiting jobs: past it, nobody is told. */
  readonly watchedUntilMs?: number | undefined;
  /** How the route's static batches ran against the latency model, as a batcher last reported it (hold-measurements.ts). */
  readonly latency?: LatencyFactor | undefined;
};

export const emptyBoard: QueueBoard = { submitted: noCounts, departed: noCounts };

/** Where a job stands in line: its lane and its ticket in that lane. */
export type QueueTicket = { readonly lane: Lane; readonly ticket: number };

/** What `GET /v1/jobs/{id}` and `job.waiting` say of a waiting job. */
export type QueueEstimate = {
  readonly lane: Lane;
  /** 1: the next to start. The jobs ahead of it in its lane, every job waiting in a higher lane, and itself. */
  readonly position: number;
  readonly estimated_start_at: string;
  /** If it generates all of its max_tokens. */
  readonly estimated_finish_at: string;
};

/** A report older than this says nothing of the copies now: the route is taken as idle. */
export const REPORT_FRESH_MS = 30_000;
/** The start rate is counted over windows of at least this long. */
export const RATE_WINDOW_MS = 10_000;

const higherLanes = (lane: Lane): readonly Lane[] => LANES.slice(0, LANES.indexOf(lane));
const waitingIn = (board: QueueBoard, lane: Lane) => Math.max(0, board.submitted[lane] - board.departed[lane]);

export function positionOf(board: QueueBoard, ticket: QueueTicket): number {
  const inLane = Math.max(1, ticket.ticket - board.departed[ticket.lane]);
  return higherLanes(ticket.lane).reduce((sum, lane) => sum + waitingIn(board, lane), inLane);
}

export type EstimateInput = {
  readonly nowMs: number;
  readonly board: QueueBoard;
  readonly ticket: QueueTicket;
  readonly job: { readonly promptTokens: number; readonly maxTokens: number };
  /** The route's components, with the copies routes.yml gives: used when no batcher has reported. */
  readonly components: readonly Component[];
  readonly maxInFlightPerCopy: number;
};

/**
 * Start: now if the jobs ahead fit in the copies' free room; else once enough of the running jobs
 * have left, at the measured start rate while jobs waited for room, or the rate the latency model
 * gives full copies running jobs of this one's size. Finish: start plus this job's time on a copy
 * as full as the line ahead makes it.
 */
export function estimateQueue(input: EstimateInput): QueueEstimate {
  const { nowMs, board, ticket, job } = input;
  const report = board.service && nowMs - board.service.atMs <= REPORT_FRESH_MS ? board.service : undefined;
  const first = input.components[0];
  if (!first) throw new Error("a route has at least one component");
  // The pace the batchers measured on the copies, where their report is fresh (profile drift).
  const component = report?.profileFactors ? { ...first, latency: correctedProfile(first.latency, report.profileFactors) } : first;
  const copies = Math.max(1, report?.copies ?? input.components.reduce((sum, c) => sum + c.copies, 0));
  // Jobs of this one's size that fit at once, by sequences and by KV tokens, whichever binds:
  // 512 + 512 jobs fill a 128-sequence copy's KV budget at 109.
  const demand = demandOn({ promptTokens: job.promptTokens, maxNewTokens: job.maxTokens }, component).tokens;
  const admitted = (sequences: number, tokens: number) => Math.max(0, Math.min(sequences, Math.floor(tokens / demand)));
  const perCopy = Math.max(1, admitted(Math.min(input.maxInFlightPerCopy, component.limits.max_sequences), component.limits.token_budget));
  const slots = Math.max(1, report ? admitted(report.slots, report.tokens ?? Number.POSITIVE_INFINITY) : copies * perCopy);
  const free = report ? admitted(report.slots - report.held, (report.tokens ?? Number.POSITIVE_INFINITY) - (report.heldTokens ?? 0)) : slots;
  const held = slots - Math.min(slots, free);
  const position = positionOf(board, ticket);
  const runningBeside = Math.min(perCopy, Math.ceil(Math.min(slots, held + position) / copies));
  const jobMs = jobOnCopyMs(component, job, runningBeside);
  const measured = board.rate && board.rate.backlogged && nowMs - board.rate.atMs <= REPORT_FRESH_MS && board.rate.perSecond > 0 ? board.rate.perSecond / 1000 : undefined;
  const perMs = measured ?? slots / jobOnCopyMs(component, job, perCopy);
  const startMs = nowMs + (position <= free ? 0 : (position - free) / perMs);
  return {
    lane: ticket.lane,
    position,
    estimated_start_at: new Date(Math.round(startMs)).toISOString(),
    estimated_finish_at: new Date(Math.round(startMs + jobMs)).toISOString(),
  };
}

/** A job's time on a copy running `sequences` like it: a rolling engine's steps, or a static batch of them. */
function jobOnCopyMs(component: Component, job: EstimateInput["job"], sequences: number): number {
  const profile = component.latency;
  if (component.engine === "lmi-dynamic") {
    return staticBatchMs(profile, Array.from({ length: sequences }, () => ({ promptTokens: job.promptTokens, newTokens: job.maxTokens })));
  }
  const meanContext = job.promptTokens + job.maxTokens / 2;
  return prefillMs(profile, job.promptTokens) + Math.max(0, job.maxTokens - 1) * decodeStepMs(profile, sequences, sequences * meanContext);
}

/** The last estimate a watcher was sent. */
export type SentEstimate = { readonly position: number; readonly startMs: number };

/**
 * Whether a waiting job's watchers hear of a new estimate: its place moved by a tenth (at least
 * one), or its start by a fifth of the wait left (at least 2 s). Smaller moves are noise to a
 * person watching, and each event is an API Gateway message.
 */
export function changedMaterially(last: SentEstimate | undefined, next: SentEstimate, nowMs: number): boolean {
  if (!last) return true;
  if (Math.abs(next.position - last.position) >= Math.max(1, Math.round(last.position / 10))) return true;
  return Math.abs(next.startMs - last.startMs) >= Math.max(2_000, (last.startMs - nowMs) / 5);
}

/**
 * Closes the start-rate window once it is RATE_WINDOW_MS old: the jobs that left over it a
 * second, and whether jobs waited for room during it (only then is the rate the copies' and not
 * the arrivals'), and the tickets taken over it a second (the route's arrival rate, which the
 * static-batch hold counts on). Undefined while the window runs.
 */
export function closeRateWindow(board: QueueBoard, nowMs: number): { readonly rate: StartRate | undefined; readonly next: RateWindow } | undefined {
  const departed = board.departed.interactive + board.departed.batch;
  const submitted = board.submitted.interactive + board.submitted.batch;
  const window = board.window;
  if (window && nowMs - window.startedMs < RATE_WINDOW_MS) return undefined;
  const next = { startedMs: nowMs, departedAtStart: departed, backlogged: false, submittedAtStart: submitted };
  if (!window) return { rate: undefined, next };
  const perSecondSince = (count: number, atStart: number) => ((count - atStart) * 1000) / (nowMs - window.startedMs);
  const arrivals = window.submittedAtStart === undefined ? {} : { arrivalsPerSecond: perSecondSince(submitted, window.submittedAtStart) };
  return { rate: { perSecond: perSecondSince(departed, window.departedAtStart), backlogged: window.backlogged, atMs: nowMs, ...arrivals }, next };
}

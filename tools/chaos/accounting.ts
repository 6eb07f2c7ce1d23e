import { countBy, round } from "./counting.ts";
import type { EventOrderFigures } from "./event-order.ts";
import { isTerminalStatus, type Backwards } from "./writes.ts";

/**
 * The chaos run's verdict, from what it observed: every job accounted for from dynalite, the
 * fault proxy's record of writes and the subscribers' event streams. Pure, so that each way a run
 * can fail is tested without a stack (test/unit/chaos-accounting.test.ts).
 */

/** A job's record as dynalite holds it once the run is over. */
export type JobRecord = {
  readonly job_id: string;
  readonly status: string;
  readonly attempt?: number;
  readonly error?: { readonly code?: string; readonly message?: string };
};

/** What the fault proxy saw reach the jobs table (a WriteLog is one). */
export type ObservedWrites = {
  /** Writes that set a SUCCEEDED result, per job. */
  readonly resultWrites: ReadonlyMap<string, number>;
  /** Result writes cut off by a store crash, which may have landed; per job. */
  readonly uncertainResultWrites: ReadonlyMap<string, number>;
  /** Writes that set any terminal status, per job. */
  readonly terminalWrites: ReadonlyMap<string, number>;
  /** Claims (RUNNING writes), per job. */
  readonly claims: ReadonlyMap<string, number>;
  /** Every write asked of a job's record, to explain one that went wrong. */
  readonly history: ReadonlyMap<string, readonly string[]>;
};

/** A WebSocket subscriber as the run leaves it (a Subscriber is one). */
export type SubscriberAtEnd = {
  readonly name: string;
  readonly connected: boolean;
  readonly jobs: ReadonlySet<string>;
  /** The status of the last final event per job. */
  readonly finalStatus: ReadonlyMap<string, string>;
  readonly unanswered: ReadonlySet<string>;
  readonly acknowledged: ReadonlySet<string>;
  readonly errorKinds: ReadonlyMap<string, number>;
  /** Its job events' order, before and after the version rule. */
  readonly order: EventOrderFigures;
};

/** One job id answered for two submissions: two requests made one job, or one was told another's id. */
export type AcceptedTwice = { readonly jobId: string; readonly via: string };

export type ObservedRun = {
  /** How many jobs the run set out to submit. */
  readonly expectedJobs: number;
  /** The job ids the API answered with. */
  readonly accepted: ReadonlySet<string>;
  readonly acceptedTwice: readonly AcceptedTwice[];
  readonly records: readonly JobRecord[];
  readonly writes: ObservedWrites;
  /** Moves backwards in each source: DynamoDB writes, samples of the table, event streams. */
  readonly backwards: { readonly writes: readonly Backwards[]; readonly samples: readonly Backwards[]; readonly streams: readonly Backwards[] };
  readonly subscribers: readonly SubscriberAtEnd[];
};

/** Details keep this many examples: enough to see a pattern, short enough to read. */
const EXAMPLES = 20;

/** Figures named as in chaos-results/latest.json; `passed` when each verdict figure is as it must be. */
export type ChaosAccount = ReturnType<typeof accountFor>;

export function accountFor(run: ObservedRun) {
  const { records, writes } = run;
  const byId = new Map(records.map((r) => [r.job_id, r]));
  const writesOf = (jobId: string) => writes.history.get(jobId) ?? [];
  const notTerminal = records.filter((r) => !isTerminalStatus(r.status));
  const missing = [...run.accepted].filter((id) => !byId.has(id));
  const failedWithoutReason = records.filter((r) => r.status === "FAILED" && !(r.error?.code && r.error.message));
  const doubleResults = [...writes.resultWrites].filter(([, n]) => n > 1);
  const allBackwards = [...run.backwards.writes, ...run.backwards.samples, ...run.backwards.streams];
  const backwardJobs = new Set(allBackwards.map((b) => b.jobId));
  const claims = [...writes.claims.values()];

  const connectedAtEnd = run.subscribers.filter((s) => s.connected);
  // A subscriber owes the final event of every job it follows that has a terminal record, with that status.
  const missingFinals = connectedAtEnd.map((s) => ({
    subscriber: s,
    missing: [...s.jobs].filter((id) => {
      const status = byId.get(id)?.status;
      return s.finalStatus.get(id) !== (isTerminalStatus(status) ? status : undefined);
    }),
  }));
  const notified = missingFinals.filter((m) => m.missing.length === 0).length;
  const notifiedRatio = connectedAtEnd.length === 0 ? 0 : notified / connectedAtEnd.length;
  const eventsOrder = (figure: keyof EventOrderFigures) => run.subscribers.reduce((sum, s) => sum + s.order[figure], 0);
  const outOfOrder = eventsOrder("outOfOrder");

  const lost = notTerminal.length + missing.length;
  const passed =
    records.length >= run.expectedJobs &&
    lost === 0 &&
    run.acceptedTwice.length === 0 &&
    doubleResults.length === 0 &&
    backwardJobs.size === 0 &&
    notifiedRatio === 1 &&
    failedWithoutReason.length === 0 &&
    outOfOrder === 0;

  return {
    // The verdict's figures.
    /** Job records in the table: at least the jobs submitted (a refused batch file leaves failed ones too). */
    jobs: records.length,
    /** Records not in a terminal state, and accepted jobs with no record. */
    lost,
    accepted_twice: run.acceptedTwice.length,
    /** Jobs whose result was written more than once. */
    double_writes: doubleResults.length,
    /** Jobs seen moving backwards in any source. */
    backwards: backwardJobs.size,
    /** Share of the subscribers connected at the end that had every final event (0 when none is). */
    notified_ratio: round(notifiedRatio, 4),
    failed_without_reason: failedWithoutReason.length,
    /** Job events the subscribers applied, under the version rule, out of the order the job's history allows. */
    events_out_of_order: outOfOrder,
    passed,
    // What explains them.
    accepted: run.accepted.size,
    /** Records in a terminal state. */
    ended: records.filter((r) => isTerminalStatus(r.status)).length,
    statuses: countBy(records, (r) => r.status),
    failed_reasons: countBy(records.filter((r) => r.status !== "SUCCEEDED" && isTerminalStatus(r.status)), (r) => `${r.status}:${r.error?.code ?? "none"}`),
    failed_retries_exhausted: records.filter((r) => r.error?.code === "retries_exhausted").length,
    retries: claims.reduce((sum, n) => sum + Math.max(0, n - 1), 0),
    jobs_claimed_more_than_once: claims.filter((n) => n > 1).length,
    max_claims_of_a_job: Math.max(0, ...claims),
    /** Jobs given a terminal status more than once: reported, not part of the verdict. */
    double_terminal_writes: [...writes.terminalWrites.values()].filter((n) => n > 1).length,
    /** SUCCEEDED records whose result write the proxy never saw. */
    // A result write cut off by a store crash may have landed unseen: not a write behind the proxy's back.
    unobserved_results: records.filter((r) => r.status === "SUCCEEDED" && !writes.resultWrites.has(r.job_id) && !writes.uncertainResultWrites.has(r.job_id)).length,
    accepted_twice_detail: run.acceptedTwice.slice(0, EXAMPLES),
    lost_detail: {
      not_terminal: notTerminal.slice(0, EXAMPLES).map((r) => ({ job_id: r.job_id, status: r.status, attempt: r.attempt, writes: writesOf(r.job_id) })),
      accepted_without_record: missing.slice(0, EXAMPLES).map((id) => ({ job_id: id, writes: writesOf(id) })),
    },
    double_writes_detail: doubleResults.slice(0, EXAMPLES),
    backwards_by_source: { dynamodb_writes: run.backwards.writes.length, dynamodb_samples: run.backwards.samples.length, event_streams: run.backwards.streams.length },
    backwards_examples: allBackwards.slice(0, EXAMPLES),
    /** The subscribers' job events as they arrived: out of order, and what the version rule dropped. */
    events_order: {
      out_of_order_before_versions: eventsOrder("outOfOrderBeforeVersions"),
      out_of_order_after_versions: outOfOrder,
      dropped_stale: eventsOrder("staleByVersion"),
      dropped_repeats: eventsOrder("repeated"),
    },
    connected_at_end: connectedAtEnd.length,
    fully_notified: notified,
    missing_finals: missingFinals
      .filter((m) => m.missing.length > 0)
      .map(({ subscriber: s, missing: ids }) => {
        const unanswered = s.unanswered;
        return {
          subscriber: s.name,
          count: ids.length,
          // Why: the frame that subscribes it again was never answered, or it was and no final event came.
          in_unanswered_frames: ids.filter((id) => unanswered.has(id)).length,
          acknowledged_without_final: ids.filter((id) => s.acknowledged.has(id)).length,
          error_replies: Object.fromEntries(s.errorKinds),
          examples: ids.slice(0, 5).map((id) => ({ job_id: id, status: byId.get(id)?.status, writes: writesOf(id) })),
        };
      }),
  };
}

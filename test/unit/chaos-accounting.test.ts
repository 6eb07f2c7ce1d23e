import { describe, expect, it } from "vitest";
import { accountFor, type JobRecord, type ObservedRun, type SubscriberAtEnd } from "../../tools/chaos/accounting.ts";
import type { Backwards } from "../../tools/chaos/writes.ts";

const done = (jobId: string, status = "SUCCEEDED", error?: JobRecord["error"]): JobRecord => ({ job_id: jobId, status, attempt: 1, ...(error && { error }) });

function subscriber(name: string, finals: Record<string, string>, change: Partial<SubscriberAtEnd> = {}): SubscriberAtEnd {
  return {
    name,
    connected: true,
    jobs: new Set(Object.keys(finals)),
    finalStatus: new Map(Object.entries(finals)),
    unanswered: new Set(),
    acknowledged: new Set(Object.keys(finals)),
    errorKinds: new Map(),
    order: { outOfOrder: 0, outOfOrderBeforeVersions: 0, staleByVersion: 0, repeated: 0 },
    ...change,
  };
}

/** Three jobs submitted, each written once, ended and announced to the one subscriber that follows them. */
function cleanRun(change: Partial<ObservedRun> = {}): ObservedRun {
  return {
    expectedJobs: 3,
    accepted: new Set(["j1", "j2", "j3"]),
    acceptedTwice: [],
    records: [done("j1"), done("j2"), done("j3", "FAILED", { code: "model_error", message: "the model refused the prompt" })],
    writes: {
      resultWrites: new Map([["j1", 1], ["j2", 1]]),
      uncertainResultWrites: new Map(),
      terminalWrites: new Map([["j1", 1], ["j2", 1], ["j3", 1]]),
      claims: new Map([["j1", 1], ["j2", 1], ["j3", 1]]),
      history: new Map([["j1", ["PutItem QUEUED"]]]),
    },
    backwards: { writes: [], samples: [], streams: [] },
    subscribers: [subscriber("steady-0", { j1: "SUCCEEDED", j2: "SUCCEEDED", j3: "FAILED" })],
    ...change,
  };
}

/** The figures the verdict rests on, with it. */
const verdict = (run: ObservedRun) => {
  const a = accountFor(run);
  return { jobs: a.jobs, lost: a.lost, accepted_twice: a.accepted_twice, double_writes: a.double_writes, backwards: a.backwards, notified_ratio: a.notified_ratio, failed_without_reason: a.failed_without_reason, events_out_of_order: a.events_out_of_order, passed: a.passed };
};

const CLEAN = { jobs: 3, lost: 0, accepted_twice: 0, double_writes: 0, backwards: 0, notified_ratio: 1, failed_without_reason: 0, events_out_of_order: 0, passed: true };

describe("the chaos run's accounting", () => {
  it("passes a clean run, and counts its states, failures and claims", () => {
    const account = accountFor(cleanRun());
    expect(verdict(cleanRun())).toEqual(CLEAN);
    expect(account).toMatchObject({
      accepted: 3,
      ended: 3,
      statuses: { SUCCEEDED: 2, FAILED: 1 },
      failed_reasons: { "FAILED:model_error": 1 },
      retries: 0,
      jobs_claimed_more_than_once: 0,
      max_claims_of_a_job: 1,
      double_terminal_writes: 0,
      unobserved_results: 0,
      connected_at_end: 1,
      fully_notified: 1,
      missing_finals: [],
    });
  });

  it("fails a run with fewer job records than jobs submitted", () => {
    expect(verdict(cleanRun({ expectedJobs: 4 }))).toEqual({ ...CLEAN, passed: false });
  });

  it("counts a job with no terminal state as lost, with its writes", () => {
    const records = [{ job_id: "j1", status: "RUNNING", attempt: 2 }, done("j2"), done("j3", "CANCELLED")];
    // Its subscriber is not owed a final event for a job that has none.
    const run = cleanRun({ records, subscribers: [subscriber("steady-0", { j2: "SUCCEEDED", j3: "CANCELLED" }, { jobs: new Set(["j1", "j2", "j3"]) })] });
    expect(verdict(run)).toEqual({ ...CLEAN, lost: 1, passed: false });
    const account = accountFor(run);
    expect(account.lost_detail.not_terminal).toEqual([{ job_id: "j1", status: "RUNNING", attempt: 2, writes: ["PutItem QUEUED"] }]);
    expect(account.ended).toBe(2);
    // A final event that the record does not back is no notification.
    const told = subscriber("steady-0", { j1: "SUCCEEDED", j2: "SUCCEEDED", j3: "CANCELLED" });
    expect(verdict(cleanRun({ records, subscribers: [told] }))).toEqual({ ...CLEAN, lost: 1, notified_ratio: 0, passed: false });
  });

  it("counts an accepted job that has no record as lost", () => {
    const run = cleanRun({ accepted: new Set(["j1", "j2", "j3", "j4"]) });
    expect(verdict(run)).toEqual({ ...CLEAN, lost: 1, passed: false });
    expect(accountFor(run).lost_detail.accepted_without_record).toEqual([{ job_id: "j4", writes: [] }]);
  });

  it("fails when one job id was answered for two submissions", () => {
    const run = cleanRun({ acceptedTwice: [{ jobId: "j2", via: "http" }] });
    expect(verdict(run)).toEqual({ ...CLEAN, accepted_twice: 1, passed: false });
    expect(accountFor(run).accepted_twice_detail).toEqual([{ jobId: "j2", via: "http" }]);
  });

  it("fails when a result was written twice", () => {
    const writes = { ...cleanRun().writes, resultWrites: new Map([["j1", 2], ["j2", 1]]), terminalWrites: new Map([["j1", 2], ["j2", 1], ["j3", 1]]) };
    const run = cleanRun({ writes });
    expect(verdict(run)).toEqual({ ...CLEAN, double_writes: 1, passed: false });
    expect(accountFor(run)).toMatchObject({ double_writes_detail: [["j1", 2]], double_terminal_writes: 1 });
  });

  it("reports, without failing, a terminal state written twice without a second result, and a result the proxy did not see", () => {
    const writes = { ...cleanRun().writes, resultWrites: new Map([["j1", 1]]), terminalWrites: new Map([["j1", 1], ["j2", 1], ["j3", 2]]) };
    expect(verdict(cleanRun({ writes }))).toEqual(CLEAN);
    expect(accountFor(cleanRun({ writes }))).toMatchObject({ double_terminal_writes: 1, unobserved_results: 1 });
  });

  it("does not count as unobserved a result whose write was cut off by a store crash", () => {
    const writes = { ...cleanRun().writes, resultWrites: new Map([["j1", 1]]), uncertainResultWrites: new Map([["j2", 1]]) };
    expect(verdict(cleanRun({ writes }))).toEqual(CLEAN);
    expect(accountFor(cleanRun({ writes }))).toMatchObject({ unobserved_results: 0 });
  });

  it("fails on a job moving backwards, counting each job once whatever the sources that saw it", () => {
    const back = (jobId: string, source: string): Backwards => ({ jobId, from: "SUCCEEDED", to: "RUNNING", source });
    const run = cleanRun({ backwards: { writes: [back("j1", "dynamodb writes")], samples: [back("j1", "dynamodb samples")], streams: [back("j2", "events of steady-0")] } });
    expect(verdict(run)).toEqual({ ...CLEAN, backwards: 2, passed: false });
    expect(accountFor(run)).toMatchObject({ backwards_by_source: { dynamodb_writes: 1, dynamodb_samples: 1, event_streams: 1 } });
    expect(accountFor(run).backwards_examples).toHaveLength(3);
  });

  it("fails when a connected subscriber lacks a final event, or has another status than the record's, and says why", () => {
    const told = subscriber("steady-0", { j1: "SUCCEEDED", j2: "SUCCEEDED", j3: "FAILED" });
    const untold = subscriber("flaky-1", { j1: "SUCCEEDED", j2: "FAILED" }, {
      jobs: new Set(["j1", "j2", "j3"]),
      unanswered: new Set(["j3"]),
      acknowledged: new Set(["j1", "j2"]),
      errorKinds: new Map([["internal_error: #", 2]]),
    });
    const run = cleanRun({ subscribers: [told, untold] });
    expect(verdict(run)).toEqual({ ...CLEAN, notified_ratio: 0.5, passed: false });
    expect(accountFor(run).missing_finals).toEqual([
      {
        subscriber: "flaky-1",
        count: 2,
        in_unanswered_frames: 1,
        acknowledged_without_final: 1,
        error_replies: { "internal_error: #": 2 },
        examples: [
          { job_id: "j2", status: "SUCCEEDED", writes: [] },
          { job_id: "j3", status: "FAILED", writes: [] },
        ],
      },
    ]);
  });

  it("judges notification by the subscribers connected at the end, and fails when none is", () => {
    const gone = subscriber("flaky-1", {}, { connected: false, jobs: new Set(["j1"]) });
    expect(verdict(cleanRun({ subscribers: [...cleanRun().subscribers, gone] }))).toEqual(CLEAN);
    expect(verdict(cleanRun({ subscribers: [gone] }))).toEqual({ ...CLEAN, notified_ratio: 0, passed: false });
  });

  it("fails a job FAILED without both an error code and a message", () => {
    const run = cleanRun({ records: [done("j1"), done("j2"), done("j3", "FAILED", { code: "model_error" })] });
    expect(verdict(run)).toEqual({ ...CLEAN, failed_without_reason: 1, passed: false });
    const noError = cleanRun({ records: [done("j1"), done("j2"), done("j3", "FAILED")] });
    expect(verdict(noError)).toEqual({ ...CLEAN, failed_without_reason: 1, passed: false });
    expect(accountFor(noError).failed_reasons).toEqual({ "FAILED:none": 1 });
  });

  it("counts claims beyond a job's first as retries, and the jobs the dead-letter function failed", () => {
    const writes = { ...cleanRun().writes, claims: new Map([["j1", 3], ["j2", 2], ["j3", 1]]) };
    const records = [done("j1"), done("j2"), done("j3", "FAILED", { code: "retries_exhausted", message: "used up its deliveries" })];
    expect(verdict(cleanRun({ writes, records }))).toEqual(CLEAN);
    expect(accountFor(cleanRun({ writes, records }))).toMatchObject({ retries: 3, jobs_claimed_more_than_once: 2, max_claims_of_a_job: 3, failed_retries_exhausted: 1 });
  });

  it("rounds the notified ratio for the report, but passes only when every subscriber was told", () => {
    const many = Array.from({ length: 30_000 }, (_, i) => subscriber(`s${i}`, { j1: "SUCCEEDED", j2: "SUCCEEDED", j3: "FAILED" }));
    const run = cleanRun({ subscribers: [...many, subscriber("late", { j1: "SUCCEEDED" }, { jobs: new Set(["j1", "j2"]) })] });
    expect(verdict(run)).toEqual({ ...CLEAN, notified_ratio: 1, passed: false });
  });

  it("passes events that arrived out of order and were dropped by the version rule, and fails any the rule applied out of order", () => {
    const dropped = subscriber("steady-0", { j1: "SUCCEEDED", j2: "SUCCEEDED", j3: "FAILED" }, { order: { outOfOrder: 0, outOfOrderBeforeVersions: 4, staleByVersion: 4, repeated: 7 } });
    expect(verdict(cleanRun({ subscribers: [dropped] }))).toEqual(CLEAN);
    expect(accountFor(cleanRun({ subscribers: [dropped, dropped] })).events_order).toEqual({ out_of_order_before_versions: 8, out_of_order_after_versions: 0, dropped_stale: 8, dropped_repeats: 14 });
    const applied = subscriber("steady-1", { j1: "SUCCEEDED", j2: "SUCCEEDED", j3: "FAILED" }, { order: { outOfOrder: 1, outOfOrderBeforeVersions: 1, staleByVersion: 0, repeated: 0 } });
    expect(verdict(cleanRun({ subscribers: [dropped, applied] }))).toEqual({ ...CLEAN, events_out_of_order: 1, passed: false });
  });
});

import { describe, expect, it } from "vitest";
import { EventOrderCheck, type ReceivedJobEvent } from "../../tools/chaos/event-order.ts";

const T1 = "2026-12-07T10:00:01.000Z";
const T2 = "2026-12-07T10:00:09.000Z";
const state = (status: string, version: number | undefined, startedAt?: string): ReceivedJobEvent => ({
  type: `job.${status.toLowerCase()}`,
  job: { job_id: "job_1", status, version, timings: { started_at: startedAt } },
});
const waiting = (version: number, index: number): ReceivedJobEvent => ({ type: "job.waiting", job_id: "job_1", version, index });

/** What the check made of the events, and which of them a client applied. */
function check(events: readonly ReceivedJobEvent[]) {
  const order = new EventOrderCheck();
  const applied = events.filter((e) => order.observe(e));
  const { outOfOrder, outOfOrderBeforeVersions, staleByVersion, repeated } = order;
  return { applied, figures: { outOfOrder, outOfOrderBeforeVersions, staleByVersion, repeated } };
}

describe("the chaos subscribers' check of event order", () => {
  it("counts nothing for a job's events in the order they were written, its final event repeated", () => {
    const events = [state("QUEUED", 1), waiting(1, 1_000), state("RUNNING", 2, T1), state("SUCCEEDED", 3, T1), state("SUCCEEDED", 3, T1)];
    expect(check(events)).toEqual({ applied: events.slice(0, 4), figures: { outOfOrder: 0, outOfOrderBeforeVersions: 0, staleByVersion: 0, repeated: 1 } });
  });

  it("counts a job.running overtaken by its final event as out of order as it arrived, and as none once the version rule dropped it", () => {
    const events = [state("QUEUED", 1), state("SUCCEEDED", 3, T1), state("RUNNING", 2, T1)];
    expect(check(events)).toEqual({ applied: events.slice(0, 2), figures: { outOfOrder: 0, outOfOrderBeforeVersions: 1, staleByVersion: 1, repeated: 0 } });
  });

  it("catches an earlier claim's event after a later claim's, and a job.waiting after the job.running, by the job's history alone", () => {
    // Prepare: claimed at T1 (2), again at T2 (3); the first claim's job.running and a job.waiting come last
    const events = [state("QUEUED", 1), state("RUNNING", 3, T2), state("RUNNING", 2, T1), waiting(1, 1_000)];
    expect(check(events).figures).toEqual({ outOfOrder: 0, outOfOrderBeforeVersions: 2, staleByVersion: 2, repeated: 0 });
  });

  it("counts an event the version rule applies against the job's history: versions that do not follow the writes fail the run", () => {
    // A job.running whose version was not moved on by its claim, arriving after the final event
    const events = [state("QUEUED", 1), state("SUCCEEDED", 2, T1), state("RUNNING", 3, T1)];
    expect(check(events).figures).toEqual({ outOfOrder: 1, outOfOrderBeforeVersions: 1, staleByVersion: 0, repeated: 0 });
  });

  it("lets a job put back to wait for a warming copy go RUNNING, QUEUED and RUNNING again", () => {
    const events = [state("QUEUED", 1), state("RUNNING", 2, T1), state("QUEUED", 3, T1), waiting(3, 5_000), state("RUNNING", 4, T2), state("SUCCEEDED", 5, T2)];
    expect(check(events)).toEqual({ applied: events, figures: { outOfOrder: 0, outOfOrderBeforeVersions: 0, staleByVersion: 0, repeated: 0 } });
  });
});

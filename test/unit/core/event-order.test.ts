import { describe, expect, it } from "vitest";
import { JobEventOrder, type JobEventFields } from "#shared/core/event-order";

const state = (type: string, version: number | undefined, jobId = "job_1"): JobEventFields => ({ type, job: { job_id: jobId, version } });
const token = (version: number, index: number, jobId = "job_1"): JobEventFields => ({ type: "job.token", job_id: jobId, version, index });
const waiting = (version: number, index: number, jobId = "job_1"): JobEventFields => ({ type: "job.waiting", job_id: jobId, version, index });

/** The events a client applies, in the order they arrived. */
function applied(events: readonly JobEventFields[]): JobEventFields[] {
  const order = new JobEventOrder();
  return events.filter((e) => order.accept(e));
}

describe("JobEventOrder", () => {
  it("applies state events whose version rises, and drops an older one that arrives after a newer one", () => {
    // Prepare: the batcher's job.running (2) is overtaken by its job.succeeded (3)
    const queued = state("job.queued", 1);
    const succeeded = state("job.succeeded", 3);
    const lateRunning = state("job.running", 2);

    // Act and assess
    expect(applied([queued, succeeded, lateRunning])).toEqual([queued, succeeded]);
  });

  it("tells a repeat (at-least-once delivery) from a stale event", () => {
    const order = new JobEventOrder();
    expect(order.place(state("job.running", 2))).toBe("apply");
    expect(order.place(state("job.running", 2))).toBe("repeat");
    expect(order.place(state("job.queued", 1))).toBe("stale");
    expect(order.lastVersion("job_1")).toBe(2);
  });

  it("keeps each job's versions apart", () => {
    const events = [state("job.running", 5, "job_a"), state("job.queued", 1, "job_b"), state("job.queued", 1, "job_a")];
    expect(applied(events)).toEqual([events[0], events[1]]);
  });

  it("applies a job's tokens in index order within the claim's version, and drops them once a later state is applied", () => {
    // Prepare: tokens of the claim at version 2, then the final event, then a late token
    const running = state("job.running", 2);
    const [t0, t1, t2] = [token(2, 0), token(2, 1), token(2, 2)];
    const succeeded = state("job.succeeded", 3);

    // Act and assess: t1 after t2 is stale; t2 after the final event too
    expect(applied([running, t0, t2, t1, succeeded, token(2, 3)])).toEqual([running, t0, t2, succeeded]);
  });

  it("applies a token that overtook its own job.running, and still applies that job.running after it", () => {
    const running = state("job.running", 2);
    const t0 = token(2, 0);
    expect(applied([state("job.queued", 1), t0, running])).toEqual([state("job.queued", 1), t0, running]);
  });

  it("takes a retried attempt's tokens, from index 0 again, over the earlier attempt's", () => {
    // Prepare: attempt 1 claimed at version 2 streams; attempt 2 claims at version 4 (a put back to wait made 3)
    const events = [state("job.running", 2), token(2, 0), token(2, 1), state("job.running", 4), token(4, 0), token(2, 2), token(4, 1)];

    // Act and assess
    expect(applied(events)).toEqual([events[0], events[1], events[2], events[3], events[4], events[6]]);
  });

  it("orders job.waiting by its index within the waiting state's version, and drops it once the job.running is applied", () => {
    const events = [state("job.queued", 1), waiting(1, 2_000), waiting(1, 1_000), waiting(1, 2_000), waiting(1, 3_000), state("job.running", 2), waiting(1, 4_000)];
    expect(applied(events)).toEqual([events[0], events[1], events[4], events[5]]);
  });

  it("orders tokens and waiting events each on their own: a job.waiting does not make a token stale", () => {
    const events = [waiting(1, 5_000), token(1, 0)];
    expect(applied(events)).toEqual(events);
  });

  it("applies events without a version (a server from before versions) and events of no job", () => {
    const events: JobEventFields[] = [state("job.running", 4), state("job.queued", undefined), { type: "job.token", job_id: "job_1", index: 0 }, { type: "batch.progress" }, { type: "subscribed" }];
    expect(applied(events)).toEqual(events);
  });
});

import { describe, expect, it } from "vitest";
import { CoalescedLineSlots, Coalescer, LINE_SLOT_WINDOW_MS } from "#shared/app/line-slots";
import type { BatchRecord } from "#shared/core/batches";
import type { JobStatus } from "#shared/core/jobs";
import type { JobSlot } from "#shared/ports";
import { FakeTime } from "../../helpers/fake-time.ts";
import { MemoryUsage } from "../../helpers/fakes.ts";

const batch: BatchRecord = { batch_id: "batch_1", tenant: "acme", created_at: "2026-11-27T12:00:00.000Z", total: 250, models: ["llama-3-1b"], expires_at: 1_900_000_000 };
const line = (n: number, ended?: JobStatus): JobSlot => ({ job_id: `job_${n}`, batch: { batch_id: batch.batch_id, line: n }, ended });
const lines = (from: number, to: number, ended?: JobStatus) => Array.from({ length: to - from }, (_, i) => line(from + i, ended));

/** A MemoryUsage whose give-backs and starts are counted as calls. */
function countedUsage() {
  const usage = new MemoryUsage();
  const calls = { giveBackJobs: 0, started: 0 };
  const giveBackJobs = usage.giveBackJobs.bind(usage);
  const started = usage.started.bind(usage);
  usage.giveBackJobs = (tenant, jobs) => {
    calls.giveBackJobs++;
    return giveBackJobs(tenant, jobs);
  };
  usage.started = (tenant, jobs) => {
    calls.started++;
    return started(tenant, jobs);
  };
  return { usage, calls };
}

describe("CoalescedLineSlots", () => {
  it("gives back and counts started the lines of a window in one call each, and counts them as line by line would", async () => {
    // Prepare: two meters holding the same 250 lines, one told line by line, one through the coalescer
    const time = new FakeTime();
    const { usage, calls } = countedUsage();
    const reference = new MemoryUsage();
    for (const meter of [usage, reference]) await meter.takeJobs("acme", lines(0, 250), 1_000);
    const slots = new CoalescedLineSlots(usage, time.sleep);

    // Act: 200 lines start and end one a ms apart (a rolling engine's), some failed; two are given back twice (a redelivery)
    const told: Promise<void>[] = [];
    for (let n = 0; n < 200; n++) {
      const ended: JobStatus = n % 10 === 0 ? "FAILED" : "SUCCEEDED";
      told.push(slots.started("acme", [line(n)]), slots.giveBackJobs("acme", [line(n, ended)]));
      await reference.started("acme", [line(n)]);
      await reference.giveBackJobs("acme", [line(n, ended)]);
      await time.sleep(1);
    }
    told.push(slots.giveBackJobs("acme", [line(3, "SUCCEEDED"), line(10, "FAILED")]));
    await Promise.all(told);

    // Assess: a call per window, not per line; the same counts and slots in flight
    const windows = Math.ceil(200 / LINE_SLOT_WINDOW_MS);
    expect(calls.giveBackJobs).toBeLessThanOrEqual(windows + 1);
    expect(calls.started).toBeLessThanOrEqual(windows + 1);
    expect(await usage.countsOf(batch)).toEqual(await reference.countsOf(batch));
    expect(await usage.jobsInFlight("acme")).toBe(await reference.jobsInFlight("acme"));
    expect(await usage.countsOf(batch)).toMatchObject({ total: 250, succeeded: 180, failed: 20, queued: 50 });
  });

  it("gives a single job's slot back at once, without waiting for a window", async () => {
    const time = new FakeTime();
    const usage = new MemoryUsage();
    await usage.takeJobs("acme", [{ job_id: "job_alone" }], 10);
    const slots = new CoalescedLineSlots(usage, time.sleep);

    await slots.giveBackJobs("acme", [{ job_id: "job_alone", ended: "SUCCEEDED" }]);

    expect(await usage.jobsInFlight("acme")).toBe(0);
    expect(time.sleeps).toEqual([]);
  });

  it("tells every caller of a window that its shared call failed", async () => {
    const time = new FakeTime();
    const usage = new MemoryUsage();
    usage.giveBackJobs = () => Promise.reject(new Error("store down"));
    const slots = new CoalescedLineSlots(usage, time.sleep);

    const first = slots.giveBackJobs("acme", [line(1, "SUCCEEDED")]);
    const second = slots.giveBackJobs("acme", [line(2, "SUCCEEDED")]);

    await expect(first).rejects.toThrow("store down");
    await expect(second).rejects.toThrow("store down");
  });
});

describe("Coalescer", () => {
  it("sends each key's items of a window together, and a later window's apart", async () => {
    const time = new FakeTime();
    const sent: [string, readonly number[]][] = [];
    const coalescer = new Coalescer<number>(async (key, items) => void sent.push([key, [...items]]), () => time.sleep(50));

    await Promise.all([coalescer.add("a", [1]), coalescer.add("b", [2]), coalescer.add("a", [3, 4])]);
    await coalescer.add("a", [5]);

    expect(sent).toEqual([
      ["a", [1, 3, 4]],
      ["b", [2]],
      ["a", [5]],
    ]);
  });
});

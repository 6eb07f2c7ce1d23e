import { describe, expect, it } from "vitest";
import { slotSweepDue, SLOT_SWEEP_EVERY_MINUTES, SUSPECT_MIN_AGE_MS, sweepSlots } from "#shared/app/slot-sweep";
import { submitBatch, submitJob } from "#shared/app/submit";
import { memoryDeps } from "../../helpers/fakes.ts";

const job = { model: "llama-2-7b", prompt: "Write a haiku.", max_tokens: 32 };

/** Memory deps whose slot audit is the usage meter, as shared/aws/deps.ts wires them. */
function sweepable() {
  const deps = memoryDeps();
  return { ...deps, slots: deps.usage };
}

describe("sweepSlots", () => {
  it("gives back the slots of a job and of a batch file whose submit stopped after the take, once found without them two sweeps apart; stored ones are left", async () => {
    // Prepare: a stored job, a stored batch, and a job and a 150-line batch file whose submits stopped after the take
    const deps = sweepable();
    await submitJob(deps, "acme", job);
    await submitBatch(deps, "acme", [JSON.stringify({ custom_id: "a", body: job })].join("\n"));
    await deps.usage.takeJobs("acme", [{ job_id: "job_never_stored" }], 1000);
    await deps.usage.takeJobs("acme", Array.from({ length: 150 }, (_, line) => ({ job_id: `job_line_${line}`, batch: { batch_id: "batch_never_stored", line } })), 1000);
    expect(await deps.usage.jobsInFlight("acme")).toBe(2 + 151);

    // Act: three sweeps, the last SUSPECT_MIN_AGE_MS after the first
    const first = await sweepSlots(deps);
    deps.clock.advance(SUSPECT_MIN_AGE_MS - 60_000);
    const early = await sweepSlots(deps);
    const inFlightMeanwhile = await deps.usage.jobsInFlight("acme");
    deps.clock.advance(60_000);
    const late = await sweepSlots(deps);
    const again = await sweepSlots(deps);

    // Assess
    expect(first).toEqual({ tenants: 1, holdings: 5, suspect: 3, givenBack: 0, reconciled: 0 });
    expect(early).toEqual({ tenants: 1, holdings: 5, suspect: 3, givenBack: 0, reconciled: 0 });
    expect(inFlightMeanwhile).toBe(153);
    expect(late).toEqual({ tenants: 1, holdings: 5, suspect: 0, givenBack: 3, reconciled: 0 });
    expect(await deps.usage.jobsInFlight("acme")).toBe(2);
    expect(again).toEqual({ tenants: 1, holdings: 2, suspect: 0, givenBack: 0, reconciled: 0 });
  });

  it("forgets a suspect whose job is stored after all, and gives nothing back for it", async () => {
    // Prepare: a submit that took its slot, then was slow to write its job
    const deps = sweepable();
    const { job: stored } = await submitJob(deps, "acme", job);
    const record = deps.jobs.jobs.get(stored.job_id);
    deps.jobs.jobs.delete(stored.job_id);
    await sweepSlots(deps);
    if (record) deps.jobs.jobs.set(stored.job_id, record);

    // Act
    deps.clock.advance(SUSPECT_MIN_AGE_MS);
    const report = await sweepSlots(deps);

    // Assess
    expect(report).toEqual({ tenants: 1, holdings: 1, suspect: 0, givenBack: 0, reconciled: 0 });
    expect(await deps.usage.jobsInFlight("acme")).toBe(1);
    expect((await deps.usage.holdings())[0]?.suspect).toEqual([]);
  });

  it("gives back the slot of a job alone that ended without giving it back, at once and once", async () => {
    // Prepare: a job ended by a store that gives nothing back (its give-back lost to a store outage)
    const deps = sweepable();
    const { job: stored } = await submitJob(deps, "acme", job);
    await deps.jobs.endUnfinished(stored.job_id, { status: "FAILED", error: { code: "submission_failed", message: "down" } }, deps.clock.now());

    // Act
    const first = await sweepSlots(deps);
    const again = await sweepSlots(deps);

    // Assess
    expect(first).toEqual({ tenants: 1, holdings: 1, suspect: 0, givenBack: 0, reconciled: 1 });
    expect(again).toEqual({ tenants: 0, holdings: 0, suspect: 0, givenBack: 0, reconciled: 0 });
    expect(await deps.usage.jobsInFlight("acme")).toBe(0);
  });

  it("gives back the lines of a batch file whose jobs ended without giving them back (counted in its tally as they ended) or were never stored, once its chunk is SUSPECT_MIN_AGE_MS old; a waiting line keeps its slot", async () => {
    // Prepare: a 6-line file; lines 1-2 failed with their give-back lost, lines 3-4 never stored, 5-6 wait
    const deps = sweepable();
    const { batch } = await submitBatch(deps, "acme", Array.from({ length: 6 }, (_, i) => JSON.stringify({ custom_id: `l${i}`, body: job })).join("\n"));
    const byLine = new Map([...deps.jobs.jobs.values()].map((j) => [j.batch_line, j.job_id]));
    for (const line of [1, 2]) await deps.jobs.endUnfinished(byLine.get(line) ?? "", { status: "FAILED", error: { code: "submission_failed", message: "down" } }, deps.clock.now());
    for (const line of [3, 4]) deps.jobs.jobs.delete(byLine.get(line) ?? "");

    // Act
    const young = await sweepSlots(deps);
    deps.clock.advance(SUSPECT_MIN_AGE_MS);
    const old = await sweepSlots(deps);
    const again = await sweepSlots(deps);

    // Assess
    expect(young).toEqual({ tenants: 1, holdings: 1, suspect: 0, givenBack: 0, reconciled: 0 });
    expect(old).toEqual({ tenants: 1, holdings: 1, suspect: 0, givenBack: 0, reconciled: 4 });
    expect(again).toEqual({ tenants: 1, holdings: 1, suspect: 0, givenBack: 0, reconciled: 0 });
    expect(await deps.usage.countsOf(batch)).toMatchObject({ total: 6, failed: 2, queued: 4 });
    await deps.usage.giveBackJobs("acme", [5, 6].map((line) => ({ job_id: byLine.get(line) ?? "", batch: { batch_id: batch.batch_id, line }, ended: "SUCCEEDED" as const })));
    expect(await deps.usage.jobsInFlight("acme")).toBe(0);
  });

  it("runs every tenth minute of the clock", () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 11, 7, 20, minute));
    expect(SLOT_SWEEP_EVERY_MINUTES).toBe(10);
    expect([0, 1, 9, 10, 20, 35].map((m) => slotSweepDue(at(m)))).toEqual([true, false, false, true, true, false]);
  });
});

import { expect, it } from "vitest";
import type { BatchRecord } from "#shared/core/batches";
import type { JobStatus } from "#shared/core/jobs";
import type { BatchTally, JobSlot, SlotAudit, UsageMeter } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const newTenant = () => `tenant-${uniqueSuffix()}`;
const minute = 29_000_000;

/** `count` jobs submitted alone, each its own id. */
const singles = (count: number): JobSlot[] => Array.from({ length: count }, () => ({ job_id: `job_${uniqueSuffix()}` }));
/** The jobs of a batch, lines `from` to `to` inclusive. */
const batchLines = (batchId: string, from: number, to: number): JobSlot[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ job_id: `${batchId}-job-${from + i}`, batch: { batch_id: batchId, line: from + i } }));
const endedAs = (status: JobStatus, jobs: readonly JobSlot[]): JobSlot[] => jobs.map((j) => ({ ...j, ended: status }));
const batchOf = (tenant: string, batchId: string, total: number): BatchRecord => ({ batch_id: batchId, tenant, created_at: "2026-12-07T00:00:00Z", total, models: ["m"], expires_at: 0 });
const charge = (tokens: number) => ({ id: `job_${uniqueSuffix()}`, tokens });

export function usageMeterContract(makeMeter: () => Promise<UsageMeter & BatchTally & SlotAudit>): void {
  it("takes job slots up to the limit and refuses the take that would pass it, which takes nothing", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();

    // Act
    const taken = [await meter.takeJobs(tenant, singles(3), 5), await meter.takeJobs(tenant, singles(3), 5), await meter.takeJobs(tenant, singles(2), 5), await meter.takeJobs(tenant, singles(1), 5)];

    // Assess: the refused take of 3 left room for exactly 2 more
    expect(taken).toEqual([true, false, true, false]);
  });

  it("never passes the limit under concurrent takes", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();

    // Act
    const taken = await Promise.all(Array.from({ length: 12 }, () => meter.takeJobs(tenant, singles(1), 5)));

    // Assess
    expect(taken.filter(Boolean)).toHaveLength(5);
    expect(await meter.takeJobs(tenant, singles(1), 5)).toBe(false);
  });

  it("makes room again for the job slots given back", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    const jobs = singles(5);
    await meter.takeJobs(tenant, jobs, 5);

    // Act
    await meter.giveBackJobs(tenant, jobs.slice(0, 2));

    // Assess
    expect(await meter.takeJobs(tenant, singles(3), 5)).toBe(false);
    expect(await meter.takeJobs(tenant, singles(2), 5)).toBe(true);
    expect(await meter.takeJobs(tenant, singles(1), 5)).toBe(false);
  });

  it("refuses more than the limit at once, on a fresh counter and on one given back slots it never held (which gives nothing)", async () => {
    // Prepare
    const meter = await makeMeter();
    const [fresh, overGiven] = [newTenant(), newTenant()];
    await meter.giveBackJobs(overGiven, [...singles(4), ...batchLines(`batch_${uniqueSuffix()}`, 0, 3)]);

    // Act
    const takes = [await meter.takeJobs(fresh, singles(6), 5), await meter.takeJobs(overGiven, singles(6), 5), await meter.chargeTokens(fresh, minute, charge(101), 100)];

    // Assess
    expect(takes).toEqual([false, false, false]);
    expect(await meter.jobsInFlight(overGiven)).toBe(0);
    expect(await meter.takeJobs(overGiven, singles(5), 5)).toBe(true);
    expect(await meter.takeJobs(overGiven, singles(1), 5)).toBe(false);
  });

  it("keeps each tenant's job slots apart", async () => {
    // Prepare
    const meter = await makeMeter();
    const [full, other] = [newTenant(), newTenant()];
    await meter.takeJobs(full, singles(5), 5);

    // Act
    const taken = await meter.takeJobs(other, singles(5), 5);

    // Assess
    expect(taken).toBe(true);
    expect(await meter.takeJobs(full, singles(1), 5)).toBe(false);
  });

  it("charges tokens to a minute up to the limit; the next minute starts empty, and job slots are counted apart", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();

    // Act
    const charges = [await meter.chargeTokens(tenant, minute, charge(60), 100), await meter.chargeTokens(tenant, minute, charge(41), 100), await meter.chargeTokens(tenant, minute, charge(40), 100)];
    const nextMinute = await meter.chargeTokens(tenant, minute + 1, charge(100), 100);
    const jobs = await meter.takeJobs(tenant, singles(5), 5);

    // Assess
    expect(charges).toEqual([true, false, true]);
    expect(nextMinute).toBe(true);
    expect(jobs).toBe(true);
    expect(await meter.chargeTokens(tenant, minute, charge(1), 100)).toBe(false);
  });

  it("makes room in a minute for the tokens refunded", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    const refunded = charge(30);
    await meter.chargeTokens(tenant, minute, charge(70), 100);
    await meter.chargeTokens(tenant, minute, refunded, 100);

    // Act
    await meter.refundTokens(tenant, minute, refunded);

    // Assess
    expect(await meter.chargeTokens(tenant, minute, charge(31), 100)).toBe(false);
    expect(await meter.chargeTokens(tenant, minute, charge(30), 100)).toBe(true);
  });

  it("gives a job's slot back once, however often it is given back", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    const [ended, running] = singles(2);
    await meter.takeJobs(tenant, [ended!, running!], 2);

    // Act: a redelivery, the dead-letter function and a cancel may each give it back
    await Promise.all([meter.giveBackJobs(tenant, [ended!]), meter.giveBackJobs(tenant, [ended!])]);
    await meter.giveBackJobs(tenant, [ended!]);

    // Assess
    expect(await meter.jobsInFlight(tenant)).toBe(1);
    expect(await meter.takeJobs(tenant, singles(1), 2)).toBe(true);
    expect(await meter.takeJobs(tenant, singles(1), 2)).toBe(false);
  });

  it("takes the same jobs once: a take sent again (its answer was lost) takes nothing more and answers true, even at the limit", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    const jobs = [...singles(1), ...batchLines(`batch_${uniqueSuffix()}`, 0, 2)];
    await meter.takeJobs(tenant, jobs, 4);

    // Act
    const again = await meter.takeJobs(tenant, jobs, 4);

    // Assess
    expect(again).toBe(true);
    expect(await meter.jobsInFlight(tenant)).toBe(4);
    expect(await meter.takeJobs(tenant, singles(1), 4)).toBe(false);
  });

  it("gives a batch's slots back per chunk of 100 lines, once its every line came back, each line counted once", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    const batchId = `batch_${uniqueSuffix()}`;
    await meter.takeJobs(tenant, batchLines(batchId, 1, 150), 150);

    // Act: lines 1-99 twice; the first chunk (lines 0-99) still holds line 99
    await meter.giveBackJobs(tenant, batchLines(batchId, 1, 98));
    await meter.giveBackJobs(tenant, batchLines(batchId, 1, 98));
    const partly = await meter.jobsInFlight(tenant);
    await meter.giveBackJobs(tenant, batchLines(batchId, 99, 99));
    const firstChunkBack = await meter.jobsInFlight(tenant);
    await Promise.all([meter.giveBackJobs(tenant, batchLines(batchId, 100, 130)), meter.giveBackJobs(tenant, batchLines(batchId, 120, 150))]);
    await meter.giveBackJobs(tenant, batchLines(batchId, 1, 150));

    // Assess
    expect([partly, firstChunkBack, await meter.jobsInFlight(tenant)]).toEqual([150, 51, 0]);
    expect(await meter.takeJobs(tenant, singles(150), 150)).toBe(true);
  });

  it("charges the same tokens once, and refunds them once", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    const sent = charge(40);

    // Act
    const charges = [await meter.chargeTokens(tenant, minute, sent, 100), await meter.chargeTokens(tenant, minute, sent, 100)];
    const charged = await meter.tokensCharged(tenant, minute);
    await Promise.all([meter.refundTokens(tenant, minute, sent), meter.refundTokens(tenant, minute, sent)]);
    await meter.refundTokens(tenant, minute, charge(25));

    // Assess
    expect(charges).toEqual([true, true]);
    expect(charged).toBe(40);
    expect(await meter.tokensCharged(tenant, minute)).toBe(0);
  });

  it("tallies a batch's lines by the status they ended with, each once, those started and not ended as running, the rest as queued", async () => {
    // Prepare: 150 lines numbered as in a file with four blank lines (1-100, 105-154)
    const meter = await makeMeter();
    const tenant = newTenant();
    const batchId = `batch_${uniqueSuffix()}`;
    const lines = [...batchLines(batchId, 1, 100), ...batchLines(batchId, 105, 154)];
    await meter.takeJobs(tenant, lines, 1000);

    // Act
    await meter.started(tenant, batchLines(batchId, 1, 10));
    await meter.started(tenant, batchLines(batchId, 1, 2));
    await meter.giveBackJobs(tenant, endedAs("SUCCEEDED", batchLines(batchId, 1, 5)));
    await meter.giveBackJobs(tenant, endedAs("SUCCEEDED", batchLines(batchId, 1, 5)));
    await meter.giveBackJobs(tenant, [...endedAs("FAILED", batchLines(batchId, 6, 6)), ...endedAs("EXPIRED", batchLines(batchId, 7, 7)), ...endedAs("CANCELLED", batchLines(batchId, 154, 154))]);
    // A start that lands after the line ended (a cancel first) does not count it running
    await meter.started(tenant, batchLines(batchId, 154, 154));

    // Assess
    expect(await meter.countsOf(batchOf(tenant, batchId, 150))).toEqual({ total: 150, queued: 139, running: 3, succeeded: 5, failed: 1, cancelled: 1, expired: 1 });
    expect(await meter.countsOf(batchOf(tenant, `batch_${uniqueSuffix()}`, 150))).toBeUndefined();
  });

  it("tallies a batch whose every line ended as finished, and gives its slots back", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    const batchId = `batch_${uniqueSuffix()}`;
    await meter.takeJobs(tenant, batchLines(batchId, 1, 230), 1000);

    // Act
    await meter.giveBackJobs(tenant, endedAs("SUCCEEDED", batchLines(batchId, 1, 200)));
    await meter.giveBackJobs(tenant, endedAs("CANCELLED", batchLines(batchId, 201, 230)));

    // Assess
    expect(await meter.countsOf(batchOf(tenant, batchId, 230))).toEqual({ total: 230, queued: 0, running: 0, succeeded: 200, failed: 0, cancelled: 30, expired: 0 });
    expect(await meter.jobsInFlight(tenant)).toBe(0);
  });

  it("lists a tenant's holdings, keeps its suspects, and gives back a suspect holding's slots once, only while still held and that very suspect", async () => {
    // Prepare: two jobs alone and a batch of 150 lines (two chunks)
    const meter = await makeMeter();
    const tenant = newTenant();
    const [lost, kept] = singles(2) as [JobSlot, JobSlot];
    const batchId = `batch_${uniqueSuffix()}`;
    await meter.takeJobs(tenant, [lost], 1000);
    await meter.takeJobs(tenant, [kept], 1000);
    await meter.takeJobs(tenant, batchLines(batchId, 0, 149), 1000);
    const mine = async () => (await meter.holdings()).find((t) => t.tenant === tenant);
    expect((await mine())?.open.toSorted()).toEqual([lost.job_id, kept.job_id, `${batchId}#0`, `${batchId}#1`].toSorted());
    expect((await mine())?.suspect).toEqual([]);

    // Act
    const lostMark = { id: lost.job_id, sinceMs: 1_000 };
    const chunkMark = { id: `${batchId}#1`, sinceMs: 2_000 };
    const suspect = [lostMark, chunkMark];
    await meter.setSuspect(tenant, suspect);
    const marked = (await mine())?.suspect;
    const staleMark = await meter.giveBackSuspect(tenant, { id: lost.job_id, sinceMs: 999 });
    const notSuspect = await meter.giveBackSuspect(tenant, { id: kept.job_id, sinceMs: 1_000 });
    const given = [await meter.giveBackSuspect(tenant, lostMark), await meter.giveBackSuspect(tenant, chunkMark)];
    const again = await meter.giveBackSuspect(tenant, lostMark);

    // Assess: 1 + 50 slots back, the job kept and the first chunk still held
    expect(marked?.toSorted((a, b) => a.sinceMs - b.sinceMs)).toEqual(suspect);
    expect({ staleMark, notSuspect, given, again }).toEqual({ staleMark: false, notSuspect: false, given: [true, true], again: false });
    expect(await meter.jobsInFlight(tenant)).toBe(1 + 100);
    expect(await mine()).toEqual({ tenant, open: expect.arrayContaining([kept.job_id, `${batchId}#0`]), suspect: [] });
    expect((await mine())?.open).toHaveLength(2);
    // A line of the given-back chunk that ends after all gives nothing back again
    await meter.giveBackJobs(tenant, endedAs("SUCCEEDED", batchLines(batchId, 100, 149)));
    expect(await meter.jobsInFlight(tenant)).toBe(101);
    await meter.setSuspect(tenant, []);
    expect((await mine())?.suspect).toEqual([]);
  });

  it("tells a chunk's lines still held and when it was taken, for the slot sweep; a chunk never taken is unknown", async () => {
    // Prepare: a batch of 150 lines (two chunks), lines 0-9 and 100-149 given back
    const meter = await makeMeter();
    const tenant = newTenant();
    const batchId = `batch_${uniqueSuffix()}`;
    const before = Date.now();
    await meter.takeJobs(tenant, batchLines(batchId, 0, 149), 1000);
    const after = Date.now();
    await meter.giveBackJobs(tenant, endedAs("FAILED", batchLines(batchId, 0, 9)));
    await meter.giveBackJobs(tenant, batchLines(batchId, 100, 149));

    // Act
    const [first, second, never] = [await meter.heldLines(tenant, `${batchId}#0`), await meter.heldLines(tenant, `${batchId}#1`), await meter.heldLines(tenant, `${batchId}#2`)];

    // Assess: the item keeps its time to the second (its expiry's resolution)
    expect(first?.lines.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 90 }, (_, i) => 10 + i));
    expect(first?.takenAtMs).toBeGreaterThanOrEqual(before - 1000);
    expect(first?.takenAtMs).toBeLessThanOrEqual(after + 1000);
    expect(second?.lines).toEqual([]);
    expect(never).toBeUndefined();
  });
}

import { isTerminal } from "../core/jobs.ts";
import { SLOT_CHUNK_LINES, slotOf } from "../core/quotas.ts";
import type { Clock, JobStore, SlotAudit, SuspectHolding, UsageMeter } from "../ports.ts";
import type { Logger } from "./logger.ts";
import { jobsOfBatch } from "./queries.ts";
import { giveBackSlot } from "./quotas.ts";

export type SlotSweepDeps = { readonly slots: SlotAudit; readonly usage: UsageMeter; readonly jobs: JobStore; readonly clock: Clock; readonly logger: Logger };

/**
 * The slot sweep runs with the batch sweep every this many minutes: each run reads one item per
 * job held alone (a job waiting an hour is read 6 times), and per batch held one Query of a job
 * or, once one of its chunks is SUSPECT_MIN_AGE_MS old, its chunks' items and all its jobs (a
 * batch line waiting an hour is read 4 times, one Query per 1,000 lines).
 */
export const SLOT_SWEEP_EVERY_MINUTES = 10;

/**
 * A holding found without its job is given back when found so again at least this long after:
 * longer than any submit spends between its take and its write (an API function's 29 s, a batch
 * file's ingest step's 15 min), so that no slot of a job about to be stored is given back. A
 * chunk's lines are settled only once the chunk is this old, for the same reason.
 */
export const SUSPECT_MIN_AGE_MS = 20 * 60_000;

export type SlotSweepReport = {
  readonly tenants: number;
  readonly holdings: number;
  readonly suspect: number;
  readonly givenBack: number;
  /** Slots of jobs that ended (or of batch lines never stored) whose give-back was lost, given back now. */
  readonly reconciled: number;
};

/** Whether the minute of `now` is one the slot sweep runs in. */
export const slotSweepDue = (now: Date) => Math.floor(now.getTime() / 60_000) % SLOT_SWEEP_EVERY_MINUTES === 0;

/**
 * Gives back the slots that nothing else would: a submit stopped (killed, out of time, its store
 * down past every try) between taking its slots and writing its job or batch file leaves them
 * held with nothing to end and give them back. A holding (a job alone, or a chunk of a batch's
 * lines) with no job stored is marked suspect; found so again SUSPECT_MIN_AGE_MS later, it is
 * given back, conditioned on being still held and still that suspect, so a repeat or a concurrent
 * sweep gives nothing back twice. A job stored after all then runs without a slot: its end gives
 * back nothing (never below zero).
 *
 * It also settles holdings whose jobs did not give them back: a job alone that has ended, and the
 * lines of a chunk at least SUSPECT_MIN_AGE_MS old whose job has ended (given back with their
 * status, so the batch's tally counts them) or was never stored (a batch file that failed part
 * way and whose refund was lost). Every give-back is keyed by the line or job, so one that
 * already happened changes nothing.
 */
export async function sweepSlots(deps: SlotSweepDeps): Promise<SlotSweepReport> {
  const nowMs = deps.clock.now().getTime();
  const report = { tenants: 0, holdings: 0, suspect: 0, givenBack: 0, reconciled: 0 };
  for (const { tenant, open, suspect } of await deps.slots.holdings()) {
    report.tenants++;
    report.holdings += open.length;
    try {
      const seen = new Map(suspect.map((s) => [s.id, s]));
      const still: SuspectHolding[] = [];
      const { absent, reconciled } = await settleHoldings(deps, tenant, open, nowMs);
      report.reconciled += reconciled;
      for (const id of absent) {
        const since = seen.get(id);
        if (since === undefined || nowMs - since.sinceMs < SUSPECT_MIN_AGE_MS) {
          still.push(since ?? { id, sinceMs: nowMs });
        } else if (await deps.slots.giveBackSuspect(tenant, since)) {
          report.givenBack++;
          deps.logger.warn("slots given back: their job was never stored", { tenant, holding: id, suspectSince: new Date(since.sinceMs).toISOString() });
        }
      }
      report.suspect += still.length;
      const unchanged = still.length === suspect.length && still.every((s) => seen.get(s.id)?.sinceMs === s.sinceMs);
      if (!unchanged) await deps.slots.setSuspect(tenant, still);
    } catch (error) {
      deps.logger.error("sweeping a tenant's slots failed; the next sweep tries again", { tenant, error: String(error) });
    }
  }
  return report;
}

/** Reads at once at most this many jobs or batches. */
const READS_AT_ONCE = 25;

const batchOf = (id: string) => (id.includes("#") ? id.slice(0, id.indexOf("#")) : undefined);

/**
 * The holdings with no job stored (a job alone that is absent, a batch chunk whose batch has no
 * job at all), for the suspect steps; and the slots it gave back of ended jobs and old chunks.
 * A job alone costs one read; a batch one Query of a job, or, once one of its chunks is
 * SUSPECT_MIN_AGE_MS old, one read per chunk held and a read of every job of the batch.
 */
async function settleHoldings(deps: SlotSweepDeps, tenant: string, holdings: readonly string[], nowMs: number): Promise<{ absent: string[]; reconciled: number }> {
  const targets = [...Map.groupBy(holdings, (id) => batchOf(id) ?? id)];
  const absent: string[] = [];
  let reconciled = 0;
  for (let i = 0; i < targets.length; i += READS_AT_ONCE) {
    await Promise.all(
      targets.slice(i, i + READS_AT_ONCE).map(async ([target, ids]) => {
        const settled = batchOf(ids[0] ?? "") === undefined ? await settleJob(deps, target) : await settleBatch(deps, tenant, target, ids, nowMs);
        if (settled === undefined) absent.push(...ids);
        else reconciled += settled;
      }),
    );
  }
  return { absent, reconciled };
}

/** A job alone: undefined if absent; else the slot it gave back (1) if the job has ended. */
async function settleJob(deps: SlotSweepDeps, jobId: string): Promise<number | undefined> {
  const job = await deps.jobs.get(jobId);
  if (!job) return undefined;
  if (!isTerminal(job.status)) return 0;
  await giveBackSlot(deps.usage, job);
  deps.logger.warn("slot given back: its job ended without giving it back", { jobId, status: job.status });
  return 1;
}

/** A batch's held chunks: undefined if the batch has no job at all; else the lines it gave back. */
async function settleBatch(deps: SlotSweepDeps, tenant: string, batchId: string, holdingIds: readonly string[], nowMs: number): Promise<number | undefined> {
  const chunks = await Promise.all(holdingIds.map(async (id) => ({ id, chunk: await deps.slots.heldLines(tenant, id) })));
  const old = chunks.flatMap(({ id, chunk }) => (chunk !== undefined && nowMs - chunk.takenAtMs >= SUSPECT_MIN_AGE_MS ? [{ id, chunk }] : []));
  if (old.length === 0) return (await deps.jobs.listByBatch(batchId, { limit: 1 })).items.length > 0 ? 0 : undefined;
  const jobs = await jobsOfBatch(deps, batchId);
  if (jobs.length === 0) return undefined;
  const byLine = new Map(jobs.flatMap((j) => (j.batch_line === undefined ? [] : [[j.batch_line, j] as const])));
  const lineSlot = (line: number) => ({ job_id: `${batchId}#${line}`, batch: { batch_id: batchId, line } });
  const slots = old.flatMap(({ id, chunk }) => {
    // Every line back but the chunk still counted (its fold lost): a line of it given back again folds it.
    if (chunk.lines.length === 0) return [lineSlot(Number(id.slice(id.indexOf("#") + 1)) * SLOT_CHUNK_LINES)];
    return chunk.lines.flatMap((line) => {
      const job = byLine.get(line);
      if (!job) return [lineSlot(line)];
      return isTerminal(job.status) ? [slotOf(job)] : [];
    });
  });
  if (slots.length === 0) return 0;
  await deps.usage.giveBackJobs(tenant, slots);
  deps.logger.warn("batch lines given back: their job ended without giving them back, or was never stored", { tenant, batchId, lines: slots.map((s) => s.batch?.line) });
  return slots.length;
}

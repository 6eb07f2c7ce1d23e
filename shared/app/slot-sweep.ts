import type { Clock, JobStore, SlotAudit, SuspectHolding } from "../ports.ts";
import type { Logger } from "./logger.ts";

export type SlotSweepDeps = { readonly slots: SlotAudit; readonly jobs: JobStore; readonly clock: Clock; readonly logger: Logger };

/**
 * The slot sweep runs with the batch sweep every this many minutes: each run reads one item per
 * job held alone and one per batch held (a job waiting an hour is read 6 times).
 */
export const SLOT_SWEEP_EVERY_MINUTES = 10;

/**
 * A holding found without its job is given back when found so again at least this long after:
 * longer than any submit spends between its take and its write (an API function's 29 s, a batch
 * file's ingest step's 15 min), so that no slot of a job about to be stored is given back.
 */
export const SUSPECT_MIN_AGE_MS = 20 * 60_000;

export type SlotSweepReport = { readonly tenants: number; readonly holdings: number; readonly suspect: number; readonly givenBack: number };

/** Whether the minute of `now` is one the slot sweep runs in. */
export const slotSweepDue = (now: Date) => Math.floor(now.getTime() / 60_000) % SLOT_SWEEP_EVERY_MINUTES === 0;

/**
 * Gives back the slots whose job was never stored: a submit stopped (killed, out of time) between
 * taking its slots and writing its job or batch file leaves them held with nothing to end and give
 * them back. A holding (a job alone, or a chunk of a batch's lines) with no job stored is marked
 * suspect; found so again SUSPECT_MIN_AGE_MS later, it is given back, conditioned on being still
 * held and still that suspect, so a repeat or a concurrent sweep gives nothing back twice. A job
 * stored after all then runs without a slot: its end gives back nothing (never below zero).
 */
export async function sweepSlots(deps: SlotSweepDeps): Promise<SlotSweepReport> {
  const nowMs = deps.clock.now().getTime();
  const report = { tenants: 0, holdings: 0, suspect: 0, givenBack: 0 };
  for (const { tenant, open, suspect } of await deps.slots.holdings()) {
    report.tenants++;
    report.holdings += open.length;
    try {
      const seen = new Map(suspect.map((s) => [s.id, s]));
      const still: SuspectHolding[] = [];
      for (const id of await withoutJobs(deps.jobs, open)) {
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

/** The holdings with no job stored: a job alone that is absent, a batch chunk whose batch has no job at all. */
async function withoutJobs(jobs: JobStore, holdings: readonly string[]): Promise<string[]> {
  const batchOf = (id: string) => (id.includes("#") ? id.slice(0, id.indexOf("#")) : undefined);
  // One read per batch, however many of its chunks are held.
  const targets = [...new Map(holdings.map((id) => [batchOf(id) ?? id, batchOf(id) !== undefined] as const))];
  const stored = new Set<string>();
  for (let i = 0; i < targets.length; i += READS_AT_ONCE) {
    await Promise.all(
      targets.slice(i, i + READS_AT_ONCE).map(async ([target, isBatch]) => {
        const found = isBatch ? (await jobs.listByBatch(target, { limit: 1 })).items.length > 0 : (await jobs.get(target)) !== undefined;
        if (found) stored.add(target);
      }),
    );
  }
  return holdings.filter((id) => !stored.has(batchOf(id) ?? id));
}

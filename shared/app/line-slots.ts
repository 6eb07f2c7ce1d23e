import type { BatchRecord } from "../core/batches.ts";
import type { BatchTally, JobSlot, Sleep, TokenCharge, UsageMeter } from "../ports.ts";

/**
 * How long a batch line's give-back, or its count as started, waits for the other lines of its
 * tenant to share one write: about one per chunk of lines and status every this long, where it
 * was one per line (issue 18: 2 of a line's 11 AWS requests). A line's message is acknowledged
 * after its give-back, so this is what a line's acknowledgement waits at most.
 */
export const LINE_SLOT_WINDOW_MS = 100;

/**
 * The tenants' counters with a batch's lines given back and counted started together: the calls
 * made within LINE_SLOT_WINDOW_MS for one tenant go as one, and each caller is told how that one
 * went. Exact when merged: both are set operations keyed by the lines (a line given back twice,
 * or counted started twice, changes nothing), so a merged call, or one sent again, counts each
 * line once. A single job's slot passes straight through: it is a write of its own anyway, and
 * its caller waits for it. Everything else passes through.
 */
export class CoalescedLineSlots implements UsageMeter, BatchTally {
  readonly #usage: UsageMeter & BatchTally;
  readonly #giveBacks: Coalescer<JobSlot>;
  readonly #starts: Coalescer<JobSlot>;

  constructor(usage: UsageMeter & BatchTally, sleep: Sleep, windowMs: number = LINE_SLOT_WINDOW_MS) {
    this.#usage = usage;
    const window = () => sleep(windowMs);
    this.#giveBacks = new Coalescer((tenant, slots) => usage.giveBackJobs(tenant, slots), window);
    this.#starts = new Coalescer((tenant, slots) => usage.started(tenant, slots), window);
  }

  async giveBackJobs(tenant: string, jobs: readonly JobSlot[]): Promise<void> {
    const lines = jobs.filter((j) => j.batch !== undefined);
    const singles = jobs.filter((j) => j.batch === undefined);
    await Promise.all([lines.length > 0 && this.#giveBacks.add(tenant, lines), singles.length > 0 && this.#usage.giveBackJobs(tenant, singles)]);
  }

  started(tenant: string, jobs: readonly JobSlot[]): Promise<void> {
    return jobs.length === 0 ? Promise.resolve() : this.#starts.add(tenant, jobs);
  }

  countsOf(batch: BatchRecord) {
    return this.#usage.countsOf(batch);
  }
  takeJobs(tenant: string, jobs: readonly JobSlot[], limit: number) {
    return this.#usage.takeJobs(tenant, jobs, limit);
  }
  jobsInFlight(tenant: string) {
    return this.#usage.jobsInFlight(tenant);
  }
  chargeTokens(tenant: string, minute: number, charge: TokenCharge, limit: number) {
    return this.#usage.chargeTokens(tenant, minute, charge, limit);
  }
  refundTokens(tenant: string, minute: number, charge: TokenCharge) {
    return this.#usage.refundTokens(tenant, minute, charge);
  }
  tokensCharged(tenant: string, minute: number) {
    return this.#usage.tokensCharged(tenant, minute);
  }
}

/**
 * Joins the items added for one key while a window runs into one call of `send`, made when the
 * window ends; every caller's promise settles with that call.
 */
export class Coalescer<T> {
  readonly #send: (key: string, items: readonly T[]) => Promise<void>;
  readonly #window: () => Promise<void>;
  readonly #open = new Map<string, { readonly items: T[]; readonly sent: Promise<void> }>();

  constructor(send: (key: string, items: readonly T[]) => Promise<void>, window: () => Promise<void>) {
    this.#send = send;
    this.#window = window;
  }

  add(key: string, items: readonly T[]): Promise<void> {
    let group = this.#open.get(key);
    if (!group) {
      const joined: T[] = [];
      const sent = this.#window().then(() => {
        this.#open.delete(key);
        return this.#send(key, joined);
      });
      group = { items: joined, sent };
      this.#open.set(key, group);
    }
    group.items.push(...items);
    return group.sent;
  }
}

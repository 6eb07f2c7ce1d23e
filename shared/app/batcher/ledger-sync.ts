import { addLoad, noLoad, subtractLoad, type Load } from "../../core/gpu-batch-policy.ts";
import type { BatchRoomShare } from "../../core/batch-lane-cap.ts";
import type { Lane } from "../../core/lanes.ts";
import type { ComponentDrift } from "../../core/component-drift.ts";
import type { CapacityLedger } from "../../ports.ts";

/** How often the batcher re-reads what other batchers hold, and re-publishes its own load. */
export const LEDGER_REFRESH_MS = 500;
/** How often while its own jobs wait for room: room another batcher gives up is taken soon. */
export const LEDGER_REFRESH_WAITING_MS = 100;
/** A holder entry outlives its last refresh by this much before others ignore it. */
export const LEDGER_TTL_MS = 30_000;

/**
 * This batcher's side of the capacity ledger: the load it holds on each component, published for
 * the other batchers, and the load they publish and the jobs cancelled there, read back on a schedule.
 */
export class LedgerSync {
  readonly #ledger: CapacityLedger;
  /** This batcher's name in the ledger (one per route run). */
  readonly #holder: string;
  readonly #components: readonly string[];
  readonly #own = new Map<string, Load>();
  /** The part of #own that interactive-lane jobs hold, and of #others. */
  readonly #ownInteractive = new Map<string, Load>();
  #others = new Map<string, Load>();
  #othersInteractive = new Map<string, Load>();
  /** The other holders waiting for room on each component, as of the last read. */
  #othersWaitingHolders = new Map<string, readonly string[]>();
  /** Each component's drift from its profile as the batchers last stored it, as of the last read. */
  #storedDrift = new Map<string, ComponentDrift | undefined>();
  /** The batch-lane load this run started on each component since it last read the others'. */
  #batchSinceRead = new Map<string, Load>();
  /** When another batcher got the oldest job it holds waiting for room on these components. */
  othersOldestWaitingMs: number | undefined;
  /** Whether another batcher holds an interactive-lane job waiting for room on these components. */
  othersInteractiveWaiting = false;
  /** Jobs marked cancelled on these components, as of the last read: calls to abort. */
  cancelled: ReadonlySet<string> = new Set();
  /** The latest time another batcher says it saw interactive work on these components. */
  othersInteractiveSeenMs: number | undefined;
  /** When this run last saw interactive work on these components (RouteRun sets it): published for the others. */
  interactiveSeenMs: number | undefined;
  /** The latest another batcher pulls from the queues until. */
  othersTopUpUntilMs: number | undefined;
  /** Whether this run's load changed since it last published it. */
  #ownChanged = false;
  /** A change the others must see before they next decide (reserve's `tellAtOnce`). */
  #tellAtOnce = false;
  #publishedWaiting = false;
  /** When it last told the others it has jobs waiting (after none). */
  #waitingPublishedAtMs = Number.NEGATIVE_INFINITY;
  #publishedInteractive = false;
  #publishedTopUpUntilMs: number | undefined;
  /** Whether this run's waiting jobs include an interactive one, as of the last refresh. */
  #interactiveWaiting = false;
  #readAtMs = Number.NEGATIVE_INFINITY;
  #publishedAtMs = Number.NEGATIVE_INFINITY;

  constructor(ledger: CapacityLedger, holder: string, components: readonly string[]) {
    this.#ledger = ledger;
    this.#holder = holder;
    this.#components = components;
  }

  /** What every batcher holds on the component. */
  heldOn(component: string): Load {
    return addLoad(this.#own.get(component) ?? noLoad, this.#others.get(component) ?? noLoad);
  }

  /** The component's stored drift, as of the last read (it comes with the holders, at no cost). */
  storedDrift(component: string): ComponentDrift | undefined {
    return this.#storedDrift.get(component);
  }

  /** What the other batchers hold on the component, as of the last read. */
  othersOn(component: string): Load {
    return this.#others.get(component) ?? noLoad;
  }

  /** What interactive-lane jobs hold on the component, over every batcher. */
  interactiveHeldOn(component: string): Load {
    return addLoad(this.#ownInteractive.get(component) ?? noLoad, this.#othersInteractive.get(component) ?? noLoad);
  }

  /**
   * This run's share of the room under the batch lane's cap on the component (batch-lane-cap.ts):
   * what it started there since it last read the others, and how many batchers wait for that room.
   */
  batchRoomShare(component: string): BatchRoomShare {
    const othersWaiting = this.#othersWaitingHolders.get(component) ?? [];
    return {
      startedSinceRead: this.#batchSinceRead.get(component) ?? noLoad,
      contenders: 1 + othersWaiting.length,
      firstInLine: othersWaiting.every((holder) => this.#holder < holder),
      readSinceWaiting: this.#publishedWaiting && this.#readAtMs > this.#waitingPublishedAtMs,
    };
  }

  /**
   * `tellAtOnce`: publish at the next refresh (RouteRun calls one at once) rather than within LEDGER_REFRESH_MS. For a batch-lane
   * start under the cap: the others decide on what this run published, and with starts published
   * only every 500 ms up to four batchers each filled the same room (the batch held 40% over the cap).
   */
  reserve(component: string, load: Load, lane: Lane, tellAtOnce = false): void {
    this.#own.set(component, addLoad(this.#own.get(component) ?? noLoad, load));
    if (lane === "interactive") this.#ownInteractive.set(component, addLoad(this.#ownInteractive.get(component) ?? noLoad, load));
    else this.#batchSinceRead.set(component, addLoad(this.#batchSinceRead.get(component) ?? noLoad, load));
    this.#ownChanged = true;
    this.#tellAtOnce ||= tellAtOnce;
  }

  release(component: string, load: Load, lane: Lane): void {
    this.#own.set(component, subtractLoad(this.#own.get(component) ?? noLoad, load));
    if (lane === "interactive") this.#ownInteractive.set(component, subtractLoad(this.#ownInteractive.get(component) ?? noLoad, load));
    this.#ownChanged = true;
  }

  /**
   * Reads the others' load when due (more often while this run's jobs wait or it yields: it takes
   * the room back soon once the job it yielded to has started), and publishes this run's at once
   * when its jobs start or stop waiting, when an interactive job starts or stops waiting, or,
   * while it yields, the room it gives back.
   */
  async refresh(nowMs: number, oldestWaitingMs: number | undefined, interactiveWaiting: boolean, yielding: () => boolean, topUpUntilMs?: number): Promise<void> {
    const waiting = oldestWaitingMs !== undefined;
    this.#interactiveWaiting = waiting && interactiveWaiting;
    if (nowMs - this.#readAtMs >= (waiting || yielding() ? LEDGER_REFRESH_WAITING_MS : LEDGER_REFRESH_MS)) {
      this.#readAtMs = nowMs;
      this.#batchSinceRead.clear();
      const others = await Promise.all(this.#components.map((c) => this.#ledger.others(c, this.#holder, new Date(nowMs))));
      this.#others = new Map(this.#components.map((c, i) => [c, others[i]?.load ?? noLoad]));
      this.#othersInteractive = new Map(this.#components.map((c, i) => [c, others[i]?.interactiveLoad ?? noLoad]));
      this.#othersWaitingHolders = new Map(this.#components.map((c, i) => [c, others[i]?.waitingHolders ?? []]));
      this.#storedDrift = new Map(this.#components.map((c, i) => [c, others[i]?.drift]));
      const oldest = Math.min(...others.map((o) => o.oldestWaitingMs ?? Number.POSITIVE_INFINITY));
      this.othersOldestWaitingMs = Number.isFinite(oldest) ? oldest : undefined;
      this.othersInteractiveWaiting = others.some((o) => o.interactiveWaiting);
      this.cancelled = new Set(others.flatMap((o) => o.cancelled));
      const seen = Math.max(...others.map((o) => o.interactiveSeenMs ?? Number.NEGATIVE_INFINITY));
      this.othersInteractiveSeenMs = Number.isFinite(seen) ? seen : undefined;
      const latest = Math.max(...others.map((o) => o.topUpUntilMs ?? Number.NEGATIVE_INFINITY));
      this.othersTopUpUntilMs = Number.isFinite(latest) ? latest : undefined;
    }
    // A batcher that starts or stops pulling past its deadline says so at once: the others hand over on it.
    const due =
      this.#tellAtOnce ||
      nowMs - this.#publishedAtMs >= LEDGER_REFRESH_MS ||
      waiting !== this.#publishedWaiting ||
      this.#interactiveWaiting !== this.#publishedInteractive ||
      topUpUntilMs !== this.#publishedTopUpUntilMs;
    if (due || (this.#ownChanged && yielding())) await this.publish(nowMs, oldestWaitingMs, false, topUpUntilMs);
  }

  /** Publishes this run's load and its oldest waiting job; `final`: it holds nothing any more. */
  async publish(nowMs: number, oldestWaitingMs: number | undefined, final = false, topUpUntilMs?: number): Promise<void> {
    this.#publishedAtMs = nowMs;
    this.#publishedTopUpUntilMs = topUpUntilMs;
    this.#ownChanged = false;
    this.#tellAtOnce = false;
    const waitingSince = final ? undefined : oldestWaitingMs;
    if (waitingSince !== undefined && !this.#publishedWaiting) this.#waitingPublishedAtMs = nowMs;
    this.#publishedWaiting = waitingSince !== undefined;
    const interactiveWaiting = waitingSince !== undefined && this.#interactiveWaiting;
    this.#publishedInteractive = interactiveWaiting;
    const expiresAt = new Date(nowMs + LEDGER_TTL_MS);
    await Promise.all(
      this.#components.map((c) =>
        this.#ledger.publish(c, this.#holder, {
          load: final ? noLoad : (this.#own.get(c) ?? noLoad),
          oldestWaitingMs: waitingSince,
          interactiveWaiting,
          interactiveLoad: final ? noLoad : (this.#ownInteractive.get(c) ?? noLoad),
          interactiveSeenMs: final ? undefined : this.interactiveSeenMs,
          topUpUntilMs: final ? undefined : topUpUntilMs,
        }, expiresAt),
      ),
    );
  }
}

import { factorsOf, LoadIntegral, meanLoad, NO_COMPONENT_DRIFT, noteSample, rollingSamples, withSamples, type ComponentDrift, type PartSample } from "../../core/component-drift.ts";
import { demandOn, type Load } from "../../core/gpu-batch-policy.ts";
import { correctedProfile, type DriftFactors, type DriftSample } from "../../core/profile-drift.ts";
import type { Component } from "../../core/routes.ts";
import type { CapacityLedger } from "../../ports.ts";
import type { Logger } from "../logger.ts";

/**
 * A batcher stores its component's drift this often while it gathers samples, beside once when
 * its factor changes and once as it ends: one PutItem a minute at most, not one a job.
 */
export const DRIFT_SAVE_EVERY_MS = 60_000;
/** A stored drift outlives its last store by this much: a pace measured a day ago is no longer the copy's. */
export const DRIFT_TTL_MS = 24 * 3_600_000;

/** A rolling call being timed: the component's load integral when it started. */
export type RollingTiming = { readonly component: Component; readonly start: ReturnType<LoadIntegral["mark"]>; readonly loadAtStart: Load };

/** What a rolling call's job measured, as gpu-call.ts tells it. */
export type RollingMeasure = {
  readonly promptTokens: number;
  readonly maxNewTokens: number;
  readonly generatedTokens: number;
  /** The call's own start and answer (after the job's claim). */
  readonly startMs: number;
  readonly endMs: number;
  readonly firstTokenMs?: number | undefined;
  readonly lastTokenMs?: number | undefined;
};

/**
 * This batcher's side of the components' drift from their profiles (core/component-drift.ts):
 * it starts from the state the ledger read brings (stored by the batchers before it), lays its
 * own samples on top, plans with the corrected profile, and stores the state for the next ones.
 * Static batches come timed from HoldSync; rolling calls are timed here against the load every
 * batcher held on the copies while they ran.
 */
export class DriftSync {
  readonly #ledger: Pick<CapacityLedger, "saveDrift">;
  readonly #logger: Logger;
  /** The stored state this batcher's samples lie on: the newest read or stored. */
  readonly #base = new Map<string, ComponentDrift>();
  /** Samples since the last store, in order: laid again on a newer state another batcher stores. */
  readonly #pending = new Map<string, PartSample[]>();
  readonly #state = new Map<string, ComponentDrift>();
  readonly #loads = new Map<string, LoadIntegral>();
  /** When the oldest unstored sample of each component came: it waits at most DRIFT_SAVE_EVERY_MS. */
  readonly #pendingSinceMs = new Map<string, number>();
  /** Components whose factor changed since their last store: stored at the next chance. */
  readonly #changed = new Set<string>();

  constructor(deps: { readonly ledger: Pick<CapacityLedger, "saveDrift">; readonly logger: Logger }) {
    this.#ledger = deps.ledger;
    this.#logger = deps.logger;
  }

  /** A state read from the ledger: adopted, with this batcher's unstored samples on top, when newer than its own base. */
  adopt(component: string, stored: ComponentDrift | undefined): void {
    if (!stored || stored.atMs <= (this.#base.get(component) ?? NO_COMPONENT_DRIFT).atMs) return;
    this.#base.set(component, stored);
    this.#state.set(component, withSamples(stored, this.#pending.get(component) ?? []));
  }

  /** What every batcher holds on the component from `atMs` on, spread over its copies. */
  noteLoad(component: Component, held: Load, atMs: number): void {
    const copies = Math.max(1, component.copies);
    this.#load(component.name).set(atMs, held.sequences / copies, held.tokens / copies);
  }

  /** A rolling call of one job starting now. */
  beginRolling(component: Component, held: Load, atMs: number): RollingTiming {
    const copies = Math.max(1, component.copies);
    return { component, start: this.#load(component.name).mark(atMs), loadAtStart: { sequences: held.sequences / copies, tokens: held.tokens / copies } };
  }

  /**
   * A rolling call answered in full. The ledger counts KV tokens as the engine admits them
   * (prompt plus max new tokens, or half of them on a paged engine); the context the copy's
   * sequences read each step is taken to stand to that as this job's own mean context
   * (prompt plus half its output) stands to its own admission. With fewer sequences than copies,
   * SageMaker's least-outstanding routing gives each its own copy: a busy copy runs one at least.
   */
  endRolling(timing: RollingTiming, measure: RollingMeasure): void {
    const { component } = timing;
    const mean = meanLoad(timing.start, this.#load(component.name).mark(measure.endMs), timing.loadAtStart);
    const admitted = demandOn({ promptTokens: measure.promptTokens, maxNewTokens: measure.maxNewTokens }, component).tokens;
    const contextShare = admitted > 0 ? (measure.promptTokens + measure.generatedTokens / 2) / admitted : 1;
    const sequences = Math.max(1, mean.sequences);
    const contextPerSequence = mean.sequences > 0 ? (mean.tokens / mean.sequences) * contextShare : measure.promptTokens + measure.generatedTokens / 2;
    const samples = rollingSamples(component.latency, { ...measure, perCopy: { sequences, contextTokens: sequences * contextPerSequence } }, this.factors(component.name));
    for (const sample of samples) this.#note(component.name, sample, measure.endMs);
  }

  /** A static batch's time against the profile: it moves the decode and the prefill alike. */
  noteStatic(component: string, sample: DriftSample, atMs: number): void {
    this.#note(component, { ...sample, part: "both" }, atMs);
  }

  factors(component: string): DriftFactors {
    return factorsOf(this.#state.get(component) ?? NO_COMPONENT_DRIFT);
  }

  /** The component's factors when they correct its profile; undefined while it holds. */
  correction(component: string): DriftFactors | undefined {
    const factors = this.factors(component);
    return factors.decode === 1 && factors.prefill === 1 ? undefined : factors;
  }

  /** The component as packing, admission and ETAs should see it: its profile corrected once a drift passed the threshold. */
  corrected(component: Component): Component {
    const factors = this.factors(component.name);
    return factors.decode === 1 && factors.prefill === 1 ? component : { ...component, latency: correctedProfile(component.latency, factors) };
  }

  /**
   * The states to store now: those with samples since their last store, when their factor
   * changed, their oldest waited DRIFT_SAVE_EVERY_MS, or the run ends (`final`). Each becomes the base.
   */
  toSave(nowMs: number, final: boolean): { readonly component: string; readonly drift: ComponentDrift }[] {
    const due = [...this.#pending].filter(([name, samples]) => samples.length > 0 && (final || this.#changed.has(name) || nowMs - (this.#pendingSinceMs.get(name) ?? nowMs) >= DRIFT_SAVE_EVERY_MS));
    return due.map(([name]) => {
      const drift = { ...(this.#state.get(name) ?? NO_COMPONENT_DRIFT), atMs: nowMs };
      this.#base.set(name, drift);
      this.#state.set(name, drift);
      this.#pending.set(name, []);
      this.#changed.delete(name);
      this.#pendingSinceMs.delete(name);
      return { component: name, drift };
    });
  }

  /**
   * Stores the states that are due (toSave) beside the capacity ledger's holders: at most one
   * PutItem a component a minute while samples come, one when a factor changes, one as the run
   * ends. Best effort, never rejecting: a store lost costs the next batcher the samples since the
   * last one.
   */
  store(nowMs: number, final: boolean): Promise<void> | undefined {
    const due = this.toSave(nowMs, final);
    if (due.length === 0) return undefined;
    const expiresAt = new Date(nowMs + DRIFT_TTL_MS);
    return Promise.all(due.map(({ component, drift }) => this.#ledger.saveDrift(component, drift, expiresAt))).then(
      () => undefined,
      (error: unknown) => this.#logger.warn("could not store the profile drift; the next batcher starts from the last one stored", { error: String(error) }),
    );
  }

  #note(component: string, sample: PartSample, atMs: number): void {
    const before = this.#state.get(component) ?? NO_COMPONENT_DRIFT;
    const after = noteSample(before, sample);
    if (after === before) return;
    this.#state.set(component, after);
    this.#pending.set(component, [...(this.#pending.get(component) ?? []), sample]);
    if (after.decode.factor !== before.decode.factor || after.prefill.factor !== before.prefill.factor) this.#changed.add(component);
    if (!this.#pendingSinceMs.has(component)) this.#pendingSinceMs.set(component, atMs);
  }

  #load(component: string): LoadIntegral {
    let integral = this.#loads.get(component);
    if (!integral) {
      integral = new LoadIntegral();
      this.#loads.set(component, integral);
    }
    return integral;
  }
}

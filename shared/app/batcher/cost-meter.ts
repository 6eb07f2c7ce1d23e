import { copyUsdPerSecond, OccupancyTimeline, staticBatchShareUsd, type CostRule } from "../../core/job-breakdown.ts";
import type { Component } from "../../core/routes.ts";

export type CallCost = { readonly usdPerSequence: number; readonly rule: CostRule };

/**
 * Shares out the copies' cost among the sequences this batcher runs (docs/cost.md). A static
 * batch holds a whole copy for its call: it pays the copy's time, split equally. A rolling
 * engine runs sequences of many calls side by side: each pays, instant by instant, its share of
 * the busy copies, counting this batcher's calls exactly and the other batchers' as the capacity
 * ledger last said.
 */
export class CostMeter {
  readonly #timelines = new Map<string, OccupancyTimeline>();
  /** Start times of this batcher's calls still running, per component: what the timeline must remember. */
  readonly #running = new Map<string, number[]>();

  /** A call of `sequences` reached the component's engine at `atMs`. */
  started(component: string, sequences: number, atMs: number): void {
    this.#timeline(component).addOwn(atMs, sequences);
    this.#running.set(component, [...(this.#running.get(component) ?? []), atMs]);
  }

  /** The other batchers' sequences on the component, as the ledger said at `atMs`. */
  othersRead(component: string, sequences: number, atMs: number): void {
    const timeline = this.#timeline(component);
    timeline.setOthers(atMs, sequences);
    // With none of this batcher's calls running, only the state now matters to the next one.
    if ((this.#running.get(component) ?? []).length === 0) timeline.forgetBefore(atMs);
  }

  /** The call started at `fromMs` answered at `toMs`: what each of its sequences owes. */
  ended(component: Component, sequences: number, fromMs: number, toMs: number): CallCost {
    const usdPerS = copyUsdPerSecond(component);
    const timeline = this.#timeline(component.name);
    const rule: CostRule = component.engine === "lmi-dynamic" ? "static-batch" : "rolling-share";
    const usdPerSequence = rule === "static-batch" ? staticBatchShareUsd(usdPerS, toMs - fromMs, sequences) : timeline.shareUsd(fromMs, toMs, usdPerS, component.copies);
    timeline.addOwn(toMs, -sequences);
    const starts = this.#running.get(component.name) ?? [];
    const mine = starts.indexOf(fromMs);
    if (mine !== -1) starts.splice(mine, 1);
    timeline.forgetBefore(starts.length === 0 ? toMs : Math.min(...starts));
    return { usdPerSequence, rule };
  }

  #timeline(component: string): OccupancyTimeline {
    let timeline = this.#timelines.get(component);
    if (!timeline) {
      timeline = new OccupancyTimeline();
      this.#timelines.set(component, timeline);
    }
    return timeline;
  }
}

import { addLoad, subtractLoad, type Load } from "./gpu-batch-policy.ts";
import { decodeStepMs } from "./latency-model.ts";
import type { LatencyProfile } from "./profiles.ts";
import type { Component } from "./routes.ts";

/**
 * Issue 12 item 3: an interactive job beside a batch file decodes at the batch's step time. One
 * decode step costs a fixed part (the weights, read once per step) and a part per context token
 * that every running sequence holds (the KV cache, read every step): a copy full of a batch file
 * (about 130 sequences of 512 + 512) steps in ~23 ms where an interactive job alone steps in
 * ~6.7 ms. So while interactive work is around, the batch lane's load on a copy is capped at what
 * lengthens the step by at most `interactive_slowdown_percent` of the step's fixed part.
 *
 * Counted in the load the ledger holds (the KV tokens a job may take, as its engine admits): a
 * reserving engine's job takes its prompt and all its new tokens from the start, while the step
 * reads only what it has so far, on average its prompt and half its output. So on a reserving
 * engine the cap is an upper bound: the step beside the capped batch is shorter than it says.
 */

/** The decode-step time a load adds on one copy beside others, ms: its sequences and its context tokens. */
export function addedStepMs(profile: LatencyProfile, load: Load): number {
  return load.sequences === 0 ? 0 : decodeStepMs(profile, load.sequences, load.tokens) - profile.decodeBaseMs;
}

/** The decode-step time the batch lane may add on one copy while interactive work is around, ms. */
export function batchStepAllowanceMs(profile: LatencyProfile, slowdownPercent: number): number {
  return (slowdownPercent / 100) * profile.decodeBaseMs;
}

/**
 * Whether a batch-lane job of `demand` may start on the component beside the batch-lane load it
 * holds, while interactive work is around: the batch load per copy after it starts adds at most
 * the allowance to the step. A component holding no batch work takes one batch job whatever the
 * cap, so a cap smaller than one job never stops the batch lane.
 */
export function batchFitsUnderCap(component: Component, batchHeld: Load, demand: Load, slowdownPercent: number): boolean {
  if (batchHeld.sequences <= 0) return true;
  const copies = Math.max(1, component.copies);
  const after = addLoad(batchHeld, demand);
  const perCopy = { sequences: after.sequences / copies, tokens: after.tokens / copies };
  const profile = component.latency;
  return addedStepMs(profile, perCopy) <= batchStepAllowanceMs(profile, slowdownPercent);
}

/**
 * A batcher's part of the room under the cap. The others' load it decides on is what they published
 * when it last read the ledger, up to LEDGER_REFRESH_WAITING_MS old, so batchers that saw the same
 * room each filled it: as a batch file landed, four of them held 2.4 times the cap between them.
 */
export type BatchRoomShare = {
  /** The batch-lane load this batcher started on the component since it last read the others'. */
  readonly startedSinceRead: Load;
  /** The batchers waiting for room there, this one included. */
  readonly contenders: number;
  /** Whether its holder id sorts before every other waiting batcher's: the one that takes a job when the shares are each smaller than one. */
  readonly firstInLine: boolean;
  /**
   * Whether it read the ledger after it told the others it waits. Batchers that start together
   * (a batch file lands, and the mappings invoke several) each see no other waiting; until the
   * read after its own word, a batcher cannot know who shares the room, and takes none of it.
   */
  readonly readSinceWaiting: boolean;
};

/**
 * Whether a batch-lane job of `demand` stays within this batcher's share of the room under the cap:
 * since its last read it takes at most the room it saw then divided among the batchers waiting for
 * it; the first in line takes one job past its share, so that shares each smaller than a job do
 * not leave room no batcher takes (and the cap is passed by one job at most, not one a batcher);
 * and none before it has read the ledger since it said it waits.
 */
export function withinRoomShare(component: Component, batchHeld: Load, share: BatchRoomShare, demand: Load, slowdownPercent: number): boolean {
  if (!share.readSinceWaiting) return false;
  if (share.contenders <= 1 || (share.firstInLine && share.startedSinceRead.sequences <= 0)) return true;
  const copies = Math.max(1, component.copies);
  const perCopy = (load: Load): Load => ({ sequences: load.sequences / copies, tokens: load.tokens / copies });
  const profile = component.latency;
  const roomMs = batchStepAllowanceMs(profile, slowdownPercent) - addedStepMs(profile, perCopy(subtractLoad(batchHeld, share.startedSinceRead)));
  return addedStepMs(profile, perCopy(addLoad(share.startedSinceRead, demand))) <= roomMs / share.contenders;
}

/** Whether a batch-lane load on the component is under the cap: another batch job may be pulled for it. */
export function batchUnderCap(component: Component, batchLoad: Load, slowdownPercent: number): boolean {
  if (batchLoad.sequences <= 0) return true;
  const copies = Math.max(1, component.copies);
  const profile = component.latency;
  return addedStepMs(profile, { sequences: batchLoad.sequences / copies, tokens: batchLoad.tokens / copies }) < batchStepAllowanceMs(profile, slowdownPercent);
}

/**
 * The highest `interactive_slowdown_percent` a component allows: the one at which the batch lane
 * could hold all of a copy but one sequence and one of the route's largest jobs' tokens. Past it
 * the cap would leave an interactive job no room to start at once.
 */
export function maxSlowdownPercent(component: Component, largestJobTokens: number): number {
  const profile = component.latency;
  const rest = { sequences: component.limits.max_sequences - 1, tokens: Math.max(0, component.limits.token_budget - largestJobTokens) };
  return Math.floor((100 * addedStepMs(profile, rest)) / profile.decodeBaseMs);
}

/** How many batch jobs of `demand` the cap lets the component hold while interactive work is around (at least one). */
export function batchJobsUnderCap(component: Component, demand: Load, slowdownPercent: number): number {
  const most = Math.max(1, component.copies) * component.limits.max_sequences;
  let held = demand;
  let jobs = 1;
  while (jobs < most && batchFitsUnderCap(component, held, demand, slowdownPercent)) {
    held = addLoad(held, demand);
    jobs++;
  }
  return jobs;
}

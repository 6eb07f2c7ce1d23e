import { z } from "zod";
import { gpuHourPrice, type Component } from "./routes.ts";

/**
 * Where a finished job's time and money went (docs/cost.md): stored on the job when a batcher
 * writes its outcome, shown by GET /v1/jobs/{id}, its final event and its batch's outputs.
 */
export const jobBreakdownSchema = z.object({
  /** Submit to the first claim, kept when the job is claimed again. */
  queue_wait_ms: z.number(),
  /** The batcher that ran the last attempt: its message's arrival to the GPU call (part of queue_wait_ms on a first attempt). */
  batcher_hold_ms: z.number(),
  /** Wall time of the GPU call that produced the outcome, as the batcher saw it. */
  gpu_ms: z.number(),
  gpu_batch: z.object({ id: z.string(), sequences: z.number(), kv_tokens: z.number() }),
  component: z.string(),
  /** SageMaker does not say which copy served a call: `id` is null; `gpus` and the price are the copy's. */
  copy: z.object({ id: z.null(), gpus: z.number(), usd_per_hour: z.number() }),
  attempts: z.number(),
  prompt_tokens: z.number(),
  generated_tokens: z.number(),
  /** The job's share of the copy's cost while its call ran; `rule` says how it was divided. */
  cost: z.object({ usd: z.number(), rule: z.enum(["static-batch", "rolling-share"]) }),
  /**
   * Only on a generation longer than one call (core/continuation.ts): the calls that made its
   * text, over all its attempts, and the prompt tokens they read again (the text so far, at each
   * call after the first), which the copy prefilled on top of the job's own prompt.
   */
  continuation: z.object({ calls: z.number(), extra_prefill_tokens: z.number() }).optional(),
});
export type JobBreakdown = z.infer<typeof jobBreakdownSchema>;
export type CostRule = JobBreakdown["cost"]["rule"];

type PricedComponent = Pick<Component, "endpointSpec" | "accelerators_per_copy">;

/** Dollars an hour of one copy of the component: its GPUs at the endpoint's GPU-hour price. */
export function copyUsdPerHour(component: PricedComponent): number {
  return gpuHourPrice(component) * component.accelerators_per_copy;
}

export function copyUsdPerSecond(component: PricedComponent): number {
  return copyUsdPerHour(component) / 3600;
}

/**
 * A static batch holds its whole copy from the call's start to its answer: the copy's cost over
 * that time, shared equally by the sequences it carried (they all hold the copy to the end).
 */
export function staticBatchShareUsd(copyUsdPerS: number, gpuMs: number, sequences: number): number {
  return (copyUsdPerS * gpuMs) / 1000 / Math.max(1, sequences);
}

/** Sequences on a component from `atMs` on: this batcher's own, and the others' as last read from the capacity ledger. */
type OccupancyPoint = { readonly atMs: number; readonly own: number; readonly others: number };

/**
 * The sequences running on a component over time, as one batcher knows them: its own calls
 * exactly, the other batchers' as the capacity ledger last said. A rolling engine's copy runs
 * every sequence admitted to it side by side, so at each instant the cost of the busy copies is
 * shared by the sequences running: with n sequences spread over c copies, each pays the copy's
 * price times min(1, c / n) (alone on a copy below one sequence a copy, a 1/(n/c) share above).
 * Summed over the sequences that is min(n, c) copies: exactly the copies at work.
 */
export class OccupancyTimeline {
  #points: OccupancyPoint[] = [];

  /** This batcher's own sequences change by `delta` at `atMs` (a call starts or answers). */
  addOwn(atMs: number, delta: number): void {
    const last = this.#last();
    this.#push({ atMs, own: last.own + delta, others: last.others });
  }

  /** The other batchers' sequences on the component, as read at `atMs`. */
  setOthers(atMs: number, others: number): void {
    const last = this.#last();
    if (last.others !== others) this.#push({ atMs, own: last.own, others });
  }

  /**
   * Dollars one sequence running from `fromMs` to `toMs` owes: the integral of the copy's price
   * times min(1, copies / n(t)), n(t) counting that sequence (at least 1 while it runs).
   */
  shareUsd(fromMs: number, toMs: number, copyUsdPerS: number, copies: number): number {
    const c = Math.max(1, copies);
    let usd = 0;
    let current: OccupancyPoint = { atMs: Number.NEGATIVE_INFINITY, own: 0, others: 0 };
    const add = (startMs: number, endMs: number, point: OccupancyPoint) => {
      const lengthMs = Math.min(endMs, toMs) - Math.max(startMs, fromMs);
      if (lengthMs <= 0) return;
      const n = Math.max(1, point.own + point.others);
      usd += (copyUsdPerS * Math.min(1, c / n) * lengthMs) / 1000;
    };
    for (const point of this.#points) {
      add(current.atMs, point.atMs, current);
      current = point;
    }
    add(current.atMs, Number.POSITIVE_INFINITY, current);
    return usd;
  }

  /** Forgets what came before `beforeMs` (no running call started earlier), keeping the state then. */
  forgetBefore(beforeMs: number): void {
    const firstKept = this.#points.findIndex((p) => p.atMs >= beforeMs);
    const cut = firstKept === -1 ? this.#points.length - 1 : firstKept - 1;
    if (cut > 0) this.#points = this.#points.slice(cut);
  }

  get points(): number {
    return this.#points.length;
  }

  #last(): OccupancyPoint {
    return this.#points.at(-1) ?? { atMs: Number.NEGATIVE_INFINITY, own: 0, others: 0 };
  }

  #push(point: OccupancyPoint): void {
    // Points come in time order from one clock; a point at the same instant replaces the one before.
    if (this.#points.at(-1)?.atMs === point.atMs) this.#points[this.#points.length - 1] = point;
    else this.#points.push(point);
  }
}

export type BreakdownInput = {
  readonly createdAt: string;
  /** The first claim's time; absent on jobs claimed before it was kept: the last claim's. */
  readonly firstClaimedAt: string | undefined;
  readonly startedAt: string | undefined;
  readonly receivedMs: number;
  readonly gpuStartMs: number;
  readonly gpuEndMs: number;
  readonly gpuBatch: { readonly id: string; readonly sequences: number; readonly kvTokens: number };
  readonly component: Pick<Component, "name" | "endpointSpec" | "accelerators_per_copy">;
  readonly attempts: number;
  readonly promptTokens: number;
  readonly generatedTokens: number;
  readonly cost: { readonly usd: number; readonly rule: CostRule };
  readonly continuation?: { readonly calls: number; readonly extraPrefillTokens: number } | undefined;
};

/**
 * The breakdown of a finished job with no GPU outcome (cancelled or expired while it waited, its
 * call aborted, dead-lettered): what its record says. Nothing is charged to it: a call aborted
 * mid-way cost the copy its time, which the jobs beside it were charged (docs/cost.md).
 */
export type OffGpuBreakdown = {
  /** Submit to the first claim; null if no batcher ever took it. */
  readonly queue_wait_ms: number | null;
  readonly batcher_hold_ms: null;
  readonly gpu_ms: null;
  readonly gpu_batch: null;
  readonly component: string | null;
  readonly copy: null;
  readonly attempts: number;
  readonly prompt_tokens: number;
  readonly generated_tokens: 0;
  readonly cost: { readonly usd: 0; readonly rule: "no-gpu-outcome" };
};

export type RecordedTimes = {
  readonly created_at: string;
  readonly first_claimed_at?: string | undefined;
  readonly started_at?: string | undefined;
  readonly component?: string | undefined;
  readonly attempt: number;
  readonly prompt_tokens: number;
};

export function offGpuBreakdown(job: RecordedTimes): OffGpuBreakdown {
  const claimedAt = job.first_claimed_at ?? job.started_at;
  return {
    queue_wait_ms: claimedAt === undefined ? null : Math.max(0, Date.parse(claimedAt) - Date.parse(job.created_at)),
    batcher_hold_ms: null,
    gpu_ms: null,
    gpu_batch: null,
    component: job.component ?? null,
    copy: null,
    attempts: job.attempt,
    prompt_tokens: job.prompt_tokens,
    generated_tokens: 0,
    cost: { usd: 0, rule: "no-gpu-outcome" },
  };
}

/** The breakdown of a job whose GPU call has answered. */
export function jobBreakdown(input: BreakdownInput): JobBreakdown {
  const claimedAt = input.firstClaimedAt ?? input.startedAt ?? input.createdAt;
  return {
    queue_wait_ms: Math.max(0, Date.parse(claimedAt) - Date.parse(input.createdAt)),
    batcher_hold_ms: Math.max(0, input.gpuStartMs - input.receivedMs),
    gpu_ms: Math.max(0, input.gpuEndMs - input.gpuStartMs),
    gpu_batch: { id: input.gpuBatch.id, sequences: input.gpuBatch.sequences, kv_tokens: input.gpuBatch.kvTokens },
    component: input.component.name,
    copy: { id: null, gpus: input.component.accelerators_per_copy, usd_per_hour: copyUsdPerHour(input.component) },
    attempts: input.attempts,
    prompt_tokens: input.promptTokens,
    generated_tokens: input.generatedTokens,
    cost: { usd: input.cost.usd, rule: input.cost.rule },
    ...(input.continuation && { continuation: { calls: input.continuation.calls, extra_prefill_tokens: input.continuation.extraPrefillTokens } }),
  };
}

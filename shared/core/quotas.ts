import { isTerminal, type JobRecord, type JobStatus } from "./jobs.ts";

/**
 * What one tenant may hold: jobs not yet finished, and tokens submitted per minute (prompt plus
 * max_tokens, counted when a job is accepted). Past either, submissions get 429 with Retry-After.
 */
export type TenantQuota = { readonly max_jobs_in_flight: number; readonly tokens_per_minute: number };

/** A tenant without its own quota gets this: roomy enough for one team's batch files. */
export const DEFAULT_QUOTA: TenantQuota = { max_jobs_in_flight: 100_000, tokens_per_minute: 50_000_000 };

/** The minute a token charge counts toward (epoch minutes). */
export function minuteOf(now: Date): number {
  return Math.floor(now.getTime() / 60_000);
}

/** Seconds until the next minute's token allowance, at least 1. */
export function secondsToNextMinute(now: Date): number {
  return Math.max(1, Math.ceil(((minuteOf(now) + 1) * 60_000 - now.getTime()) / 1000));
}

/** Tokens a job is charged: what it may hold in the engine. */
export function tokensCharged(promptTokens: number, maxTokens: number): number {
  return promptTokens + maxTokens;
}

/** A batch's slots are kept per this many lines: giving one back writes an item this small, not one holding the whole batch. */
export const SLOT_CHUNK_LINES = 100;

/**
 * What the tenant's counter holds one entry for: a job submitted alone (its id), or one chunk of a
 * batch's lines (`<batch_id>#<chunk>`), whose lines still held are kept in an item of their own.
 * `ended`: the status its lines ended with, when they are given back at their end.
 */
export type SlotHolding = {
  readonly id: string;
  readonly chunk?: { readonly batch_id: string; readonly lines: readonly number[] } | undefined;
  readonly ended?: JobStatus | undefined;
};

type Slot = { readonly job_id: string; readonly batch?: { readonly batch_id: string; readonly line: number } | undefined; readonly ended?: JobStatus | undefined };

/** Groups job slots by what holds them (and the status they ended with), in first-seen order. */
export function holdingsOf(jobs: readonly Slot[]): SlotHolding[] {
  const byKey = new Map<string, { id: string; chunk?: { batch_id: string; lines: number[] }; ended?: JobStatus | undefined }>();
  for (const job of jobs) {
    if (!job.batch) {
      byKey.set(job.job_id, { id: job.job_id, ended: job.ended });
      continue;
    }
    const id = `${job.batch.batch_id}#${Math.floor(job.batch.line / SLOT_CHUNK_LINES)}`;
    const key = `${id}|${job.ended ?? ""}`;
    const holding = byKey.get(key) ?? { id, chunk: { batch_id: job.batch.batch_id, lines: [] }, ended: job.ended };
    if (!holding.chunk?.lines.includes(job.batch.line)) holding.chunk?.lines.push(job.batch.line);
    byKey.set(key, holding);
  }
  return [...byKey.values()];
}

/** The slot a stored job holds, and the status it ended with if it did. */
export function slotOf(job: Pick<JobRecord, "job_id" | "batch_id" | "batch_line" | "status">): Slot {
  return {
    job_id: job.job_id,
    batch: job.batch_id !== undefined && job.batch_line !== undefined ? { batch_id: job.batch_id, line: job.batch_line } : undefined,
    ended: isTerminal(job.status) ? job.status : undefined,
  };
}

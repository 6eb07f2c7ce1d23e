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
 */
export type SlotHolding = { readonly id: string; readonly chunk?: { readonly batch_id: string; readonly lines: readonly number[] } | undefined };

/** Groups job slots by what holds them, in first-seen order. */
export function holdingsOf(jobs: readonly { readonly job_id: string; readonly batch?: { readonly batch_id: string; readonly line: number } | undefined }[]): SlotHolding[] {
  const byId = new Map<string, { id: string; chunk?: { batch_id: string; lines: number[] } }>();
  for (const job of jobs) {
    if (!job.batch) {
      byId.set(job.job_id, { id: job.job_id });
      continue;
    }
    const id = `${job.batch.batch_id}#${Math.floor(job.batch.line / SLOT_CHUNK_LINES)}`;
    const holding = byId.get(id) ?? { id, chunk: { batch_id: job.batch.batch_id, lines: [] } };
    if (!holding.chunk?.lines.includes(job.batch.line)) holding.chunk?.lines.push(job.batch.line);
    byId.set(id, holding);
  }
  return [...byId.values()];
}

/** The slot a stored job holds. */
export function slotOf(job: { readonly job_id: string; readonly batch_id?: string | undefined; readonly batch_line?: number | undefined }) {
  return { job_id: job.job_id, batch: job.batch_id !== undefined && job.batch_line !== undefined ? { batch_id: job.batch_id, line: job.batch_line } : undefined };
}

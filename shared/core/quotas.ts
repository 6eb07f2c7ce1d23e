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

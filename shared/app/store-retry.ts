import { RetryableError } from "../core/errors.ts";
import type { Sleep } from "../ports.ts";

/**
 * How long to wait before each further try at a write that must not be left undone when the store
 * fails past the SDK's own retries: the store may be down for seconds (the chaos run's DynamoDB
 * crash: down 4-20 s on a loaded machine). 15.5 s in all, inside an API function's 29 s.
 */
export const STORE_RETRY_DELAYS_MS: readonly number[] = [500, 1_000, 2_000, 4_000, 8_000];

/**
 * Runs `call`, and again after each delay while it fails with a RetryableError (the store
 * unavailable or throttling); any other error, or the last try's, is thrown. Only for calls that
 * are safe to repeat: conditional writes that recognize their own earlier effect.
 */
export async function retryWhileUnavailable<T>(sleep: Sleep, call: () => Promise<T>, delaysMs: readonly number[] = STORE_RETRY_DELAYS_MS): Promise<T> {
  for (const delayMs of delaysMs) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof RetryableError)) throw error;
    }
    await sleep(delayMs);
  }
  return call();
}

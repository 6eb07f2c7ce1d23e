import { BatchlineError, ModelRejectedError, ModelWarmingError } from "./errors.ts";

/** What to do with a job whose attempt failed: run it again later, or fail it for good. */
export type RetryDecision =
  | { readonly kind: "retry"; readonly delaySeconds: number }
  | { readonly kind: "wait"; readonly delaySeconds: number; readonly reason: "warming" }
  | { readonly kind: "give-up"; readonly code: string; readonly reason: string };

/** Longest backoff: SQS allows a visibility timeout of 12 hours, but jobs should not sleep that long. */
const MAX_DELAY_SECONDS = 300;

/**
 * Decides from the error and the attempt number alone. A model that rejects the prompt, or any
 * error we know not to be transient, gives up with the model's or the error's message; throttling,
 * 5xx and timeouts back off exponentially with full jitter. How many attempts in all is the
 * queue's max_receive_count: past it the DLQ and the dead-letter function take over.
 */
export function decideRetry(error: unknown, attempt: number, random: () => number, warmingRecheckSeconds: number): RetryDecision {
  // A component coming up is not the job's failure: it waits without spending an attempt.
  if (error instanceof ModelWarmingError) return { kind: "wait", delaySeconds: warmingRecheckSeconds, reason: "warming" };
  if (error instanceof ModelRejectedError) return { kind: "give-up", code: error.code, reason: error.message };
  if (error instanceof BatchlineError && !error.retryable) return { kind: "give-up", code: error.code, reason: error.message };
  const ceiling = Math.min(MAX_DELAY_SECONDS, 2 ** Math.max(0, attempt));
  return { kind: "retry", delaySeconds: Math.max(1, Math.round(ceiling * random())) };
}

import { describe, expect, it } from "vitest";
import { ModelRejectedError, ModelWarmingError, RetryableError, ValidationError } from "#shared/core/errors";
import { decideRetry } from "#shared/core/retry-policy";

const RECHECK_SECONDS = 7;

describe("decideRetry", () => {
  it("gives up on a prompt the model rejects, with the model's message", () => {
    expect(decideRetry(new ModelRejectedError("too long"), 1, () => 0.5, RECHECK_SECONDS)).toEqual({ kind: "give-up", code: "model_error", reason: "too long" });
  });

  it("gives up on any error known not to be transient", () => {
    expect(decideRetry(new ValidationError("bad"), 1, () => 0.5, RECHECK_SECONDS)).toMatchObject({ kind: "give-up", code: "invalid_request" });
  });

  it("waits for a warming component, for the route's recheck period, without it counting as the job's failure", () => {
    expect(decideRetry(new ModelWarmingError("no copy"), 4, () => 0.5, RECHECK_SECONDS)).toEqual({ kind: "wait", delaySeconds: RECHECK_SECONDS, reason: "warming" });
  });

  it.each([
    [1, 0.5, 1],
    [3, 0.5, 4],
    [5, 1, 32],
    [12, 1, 300],
    [3, 0, 1],
  ])("backs off attempt %i with jitter %f by %i s", (attempt, random, delay) => {
    expect(decideRetry(new RetryableError("throttled", "slow down"), attempt, () => random, RECHECK_SECONDS)).toEqual({ kind: "retry", delaySeconds: delay });
  });

  it("retries what it does not recognise, leaving the bound to the queue's max_receive_count", () => {
    expect(decideRetry(new Error("socket hang up"), 2, () => 0.5, RECHECK_SECONDS)).toEqual({ kind: "retry", delaySeconds: 2 });
  });
});

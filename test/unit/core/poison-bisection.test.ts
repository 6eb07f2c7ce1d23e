import { describe, expect, it } from "vitest";
import { ModelRejectedError, RetryableError } from "#shared/core/errors";
import { settleByHalves } from "#shared/core/poison-bisection";

/** A model that refuses any batch holding a bad prompt, as a whole; counts the calls it gets. */
function model(bad: ReadonlySet<number>, failure?: (batch: readonly number[]) => Error | undefined) {
  const calls: number[][] = [];
  const call = async (batch: readonly number[]) => {
    calls.push([...batch]);
    const fault = failure?.(batch);
    if (fault) throw fault;
    const poison = batch.find((n) => bad.has(n));
    if (poison !== undefined) throw new ModelRejectedError(`input ${poison} is malformed`);
    return batch.map((n) => `out-${n}`);
  };
  return { calls, call };
}

const isRejection = (error: unknown) => error instanceof ModelRejectedError;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("settleByHalves", () => {
  it("sends a batch the model takes once, and answers each input in order", async () => {
    const { calls, call } = model(new Set());
    const results = await settleByHalves(range(64), call, isRejection);
    expect(calls).toHaveLength(1);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : undefined))).toEqual(range(64).map((n) => `out-${n}`));
  });

  it("finds one bad prompt of 64 in 2·log2(64) + 1 = 13 calls; the 63 others succeed, each generated once", async () => {
    const { calls, call } = model(new Set([37]));
    const results = await settleByHalves(range(64), call, isRejection);
    expect(calls).toHaveLength(13);
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(1);
    expect(results[37]).toMatchObject({ status: "rejected", reason: { message: "input 37 is malformed" } });
    // Every good prompt is in exactly one batch the model accepted.
    const accepted = calls.filter((batch) => !batch.includes(37)).flat();
    expect(accepted.toSorted((a, b) => a - b)).toEqual(range(64).filter((n) => n !== 37));
  });

  it("finds 4 bad prompts of 64 in at most 4·2·log2(64) + 1 calls, far fewer than 65", async () => {
    const bad = new Set([0, 5, 40, 63]);
    const { calls, call } = model(bad);
    const results = await settleByHalves(range(64), call, isRejection);
    expect(results.flatMap((r, i) => (r.status === "rejected" ? [i] : []))).toEqual([0, 5, 40, 63]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(60);
    expect(calls.length).toBeLessThanOrEqual(4 * 2 * 6 + 1);
    // 1, then 2, 4, 6, 6, 8 and 8 calls a level: 35.
    expect(calls.length).toBe(35);
  });

  it("fails a lone rejected prompt without another call", async () => {
    const { calls, call } = model(new Set([0]));
    const [result] = await settleByHalves([0], call, isRejection);
    expect(calls).toHaveLength(1);
    expect(result?.status).toBe("rejected");
  });

  it("does not split a batch on a transient failure: every input gets it, for the retry policy", async () => {
    const throttled = new RetryableError("throttled", "slow down");
    const { calls, call } = model(new Set(), () => throttled);
    const results = await settleByHalves(range(8), call, isRejection);
    expect(calls).toHaveLength(1);
    expect(results).toEqual(range(8).map(() => ({ status: "rejected", reason: throttled })));
  });

  it("leaves a half that meets a transient failure whole while its sibling half goes on", async () => {
    const throttled = new RetryableError("throttled", "slow down");
    // The bad prompt is in the first half; the second half is throttled once it is sent alone.
    const { calls, call } = model(new Set([1]), (batch) => (batch.length === 4 && batch[0] === 4 ? throttled : undefined));
    const results = await settleByHalves(range(8), call, isRejection);
    expect(results.slice(4).map((r) => r.status === "rejected" && r.reason)).toEqual([throttled, throttled, throttled, throttled]);
    expect(results[1]?.status).toBe("rejected");
    expect(results.slice(0, 4).filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect(calls.map((c) => c.length)).toEqual([8, 4, 4, 2, 2, 1, 1]);
  });

  it("calls nothing for no inputs", async () => {
    const { calls, call } = model(new Set());
    expect(await settleByHalves([], call, isRejection)).toEqual([]);
    expect(calls).toHaveLength(0);
  });
});

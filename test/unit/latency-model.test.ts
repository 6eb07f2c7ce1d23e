import { describe, expect, it } from "vitest";
import { decodeStepMs, prefillMs, staticBatchTimeline } from "#shared/core/latency-model";
import { getProfile } from "#shared/core/profiles";

const llama2 = getProfile("llama2-7b-bf16-h100");
const requests = (count: number, promptTokens: number, newTokens: number) =>
  Array.from({ length: count }, () => ({ promptTokens, newTokens }));

describe("latency model", () => {
  // Anchors of ../shared/calibration/README.md: Llama-2-7B, 512 prompt + 512 new tokens, static batches.
  it.each([
    { batch: 1, seconds: 3.1 },
    { batch: 16, seconds: 4.3 },
    { batch: 48, seconds: 6.9 },
    { batch: 64, seconds: 8.2 },
    { batch: 108, seconds: 11.7 },
  ])("reproduces the H100 anchor for a static batch of $batch (≈ $seconds s)", ({ batch, seconds }) => {
    // Act
    const { totalMs } = staticBatchTimeline(llama2, requests(batch, 512, 512));

    // Assess
    expect(Math.abs(totalMs / 1000 - seconds) / seconds).toBeLessThan(0.05);
  });

  it("finishes sequences in order of their length, the batch with the longest", () => {
    // Prepare
    const batch = [300, 10, 512, 10, 128].map((newTokens) => ({ promptTokens: 256, newTokens }));

    // Act
    const { finishMs, totalMs } = staticBatchTimeline(llama2, batch);

    // Assess
    const indices = batch.map((_, i) => i);
    const byFinish = indices.toSorted((a, b) => (finishMs[a] ?? 0) - (finishMs[b] ?? 0));
    const byLength = indices.toSorted((a, b) => (batch[a]?.newTokens ?? 0) - (batch[b]?.newTokens ?? 0));
    expect(byFinish).toEqual(byLength);
    expect(finishMs[1]).toBe(finishMs[3]);
    expect(new Set(finishMs).size).toBe(4);
    expect(totalMs).toBe(Math.max(...finishMs));
  });

  it("answers a one-token sequence at the end of the prefill", () => {
    // Act
    const { finishMs, totalMs } = staticBatchTimeline(llama2, [{ promptTokens: 2000, newTokens: 1 }]);

    // Assess
    expect(finishMs).toEqual([prefillMs(llama2, 2000)]);
    expect(totalMs).toBe(prefillMs(llama2, 2000));
  });

  it("charges a decode step for the context of the sequences still running", () => {
    // Act
    const { totalMs } = staticBatchTimeline(llama2, [{ promptTokens: 100, newTokens: 3 }]);

    // Assess
    expect(totalMs).toBeCloseTo(prefillMs(llama2, 100) + decodeStepMs(llama2, 1, 101) + decodeStepMs(llama2, 1, 102), 9);
  });
});

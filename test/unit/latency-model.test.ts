import { describe, expect, it } from "vitest";
import { decodeStepMs, iterationMs, prefillMs, staticBatchTimeline } from "#shared/core/latency-model";
import { getProfile, kvCapacityTokens, profileHardware, profileNames, shippedProfile } from "#shared/core/profiles";

const llama2 = getProfile("llama2-7b-bf16-h100");
const requests = (count: number, promptTokens: number, newTokens: number) =>
  Array.from({ length: count }, () => ({ promptTokens, newTokens }));

describe("latency model", () => {
  // Anchors of docs/calibration.md: Llama-2-7B, 512 prompt + 512 new tokens, static batches.
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

describe("iterationMs", () => {
  it("pays the running sequences' decode step and the admitted ones' prefill", () => {
    // Act
    const ms = iterationMs(llama2, { decodeSequences: 3, decodeContextTokens: 1500, prefillTokens: 2000 });

    // Assess
    expect(ms).toBeCloseTo(decodeStepMs(llama2, 3, 1500) + prefillMs(llama2, 2000), 12);
  });

  it("is a plain decode step when nothing is admitted, and a plain prefill when nothing runs", () => {
    // Act & Assess
    expect(iterationMs(llama2, { decodeSequences: 2, decodeContextTokens: 900, prefillTokens: 0 })).toBe(decodeStepMs(llama2, 2, 900));
    expect(iterationMs(llama2, { decodeSequences: 0, decodeContextTokens: 0, prefillTokens: 512 })).toBe(prefillMs(llama2, 512));
  });
});

describe("GPU profiles derived by roofline from the H100 measurement (docs/gpu-profiles.md)", () => {
  // Expected values are the document's arithmetic: the H100's achieved fractions of peak
  // (weights 67.6% of bandwidth, KV 90.0%, prefill 60.7% of BF16 FLOPs; FP8 at 50%) on each GPU.
  it.each([
    { profile: "llama2-7b-bf16-a10g", decodeBaseMs: 33.22, perContextTokenMs: 0.000972, prefillTokensPerMs: 3.15, prefillMinMs: 33.22, kvTokens: 15_487 },
    { profile: "llama2-7b-bf16-a100-40gb", decodeBaseMs: 12.82, perContextTokenMs: 0.000375, prefillTokensPerMs: 14.04, prefillMinMs: 13, kvTokens: 42_953 },
    { profile: "llama2-7b-bf16-a100-80gb", decodeBaseMs: 9.78, perContextTokenMs: 0.000286, prefillTokensPerMs: 14.04, prefillMinMs: 13, kvTokens: 111_618 },
    { profile: "llama2-7b-fp8-h100", decodeBaseMs: 2.975, perContextTokenMs: 0.000087, prefillTokensPerMs: 73.4, prefillMinMs: 13, kvTokens: 248_947 },
  ] as const)("$profile", ({ profile, decodeBaseMs, perContextTokenMs, prefillTokensPerMs, prefillMinMs, kvTokens }) => {
    // Act
    const p = getProfile(profile);

    // Assess
    const near = (actual: number, expected: number) => expect(Math.abs(actual / expected - 1)).toBeLessThan(0.005);
    near(p.decodeBaseMs, decodeBaseMs);
    near(p.decodePerContextTokenMs, perContextTokenMs);
    near(p.prefillTokensPerMs, prefillTokensPerMs);
    near(p.prefillMinMs, prefillMinMs);
    expect(p.kvCapacityTokens).toBe(kvTokens);
    expect(p.decodePerSequenceMs).toBe(0);
  });

  it.each([
    // TGI on ml.g5.2xlarge, Llama-2-7B, one stream: 32.7 ms per token (sources: docs/gpu-profiles.md).
    { what: "A10G, one stream, ~300-token context", ms: () => decodeStepMs(getProfile("llama2-7b-bf16-a10g"), 1, 300), measured: 32.7 },
    // TensorRT-LLM on A100-80GB FP16, LLaMA-7B, batch 60, 128 in / 2048 out: 1,928 tokens/s, 31.1 ms a step.
    { what: "A100-80GB, batch 60 at 128 + 1024 context", ms: () => decodeStepMs(getProfile("llama2-7b-bf16-a100-80gb"), 60, 60 * 1152), measured: 60_000 / 1928 },
    // TensorRT-LLM on H100 FP8, LLaMA-7B, batch 112, 128 in / 2048 out: 6,818 tokens/s, 16.4 ms a step.
    { what: "H100 FP8, batch 112 at 128 + 1024 context", ms: () => decodeStepMs(getProfile("llama2-7b-fp8-h100"), 112, 112 * 1152), measured: 112_000 / 6818 },
  ])("lands within 15% of a published decode step: $what", ({ ms, measured }) => {
    // Act & Assess
    expect(Math.abs(ms() / measured - 1)).toBeLessThan(0.15);
  });

  it("names the GPU of every profile and a footprint that fits in its memory", () => {
    for (const name of profileNames) {
      // Act
      const { gpu, footprint } = profileHardware(name);

      // Assess
      expect(gpu).toMatch(/^(a10g|a100|h100)/);
      expect(footprint.weightBytes + footprint.kvBytesPerToken * getProfile(name).kvCapacityTokens).toBeLessThan(80e9);
    }
  });

  it("states where every profile came from: the H100 ones measured on 2026-11-27, the others derived by roofline", () => {
    for (const name of profileNames) {
      // Act
      const { provenance, gpu } = shippedProfile(name);

      // Assess
      expect(provenance).toMatchObject({ date: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/), dtype: name.includes("fp8") ? "fp8" : "bf16", engine: expect.any(String), source: expect.stringContaining("docs/") });
      expect(provenance.method).toBe(name.endsWith("bf16-h100") ? "measured" : "derived");
      if (provenance.method === "derived") expect(provenance.gpu).toBe(gpu);
    }
  });

  it("adds each further GPU's memory to a copy's KV cache", () => {
    // Act
    const one = kvCapacityTokens("llama2-7b-bf16-a10g", 1);
    const four = kvCapacityTokens("llama2-7b-bf16-a10g", 4);

    // Assess
    expect(one).toBe(15_487);
    expect(four).toBe(15_487 + Math.floor((3 * 0.9 * 24e9) / 524_288));
  });
});

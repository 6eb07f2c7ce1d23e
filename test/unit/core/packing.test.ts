import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { h100Limits, h100Profile } from "../../helpers/h100.ts";
import { staticBatchMs } from "#shared/core/latency-model";
import { byUrgency, packGpuBatches, type PackItem } from "#shared/core/packing";

const profile = h100Profile;
const limits = h100Limits;

const item = (id: string, over: Partial<PackItem> = {}): PackItem => ({
  id, promptTokens: 512, maxNewTokens: 512, payloadBytes: 2000, priority: 5, submittedMs: 0, ...over,
});

describe("packGpuBatches", () => {
  it("keeps a window that fits one copy in one batch", () => {
    const batches = packGpuBatches(Array.from({ length: 100 }, (_, i) => item(`j${i}`)), { limits, profile, oneRequestPerBatch: false });
    expect(batches.map((b) => b.length)).toEqual([100]);
  });

  it("splits by the KV token budget: 512 + 512 tokens fit 109 to a batch", () => {
    const batches = packGpuBatches(Array.from({ length: 200 }, (_, i) => item(`j${i}`)), { limits: { ...limits, max_sequences: 1000 }, profile, oneRequestPerBatch: false });
    expect(batches.map((b) => b.length)).toEqual([109, 91]);
  });

  it("splits by max sequences", () => {
    const batches = packGpuBatches(Array.from({ length: 10 }, (_, i) => item(`j${i}`)), { limits: { ...limits, max_sequences: 4 }, profile, oneRequestPerBatch: false });
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
  });

  it("splits by payload bytes only when the batch is one request body", () => {
    const items = Array.from({ length: 4 }, (_, i) => item(`j${i}`, { payloadBytes: 2_000_000 }));
    expect(packGpuBatches(items, { limits, profile, oneRequestPerBatch: true }).map((b) => b.length)).toEqual([3, 1]);
    expect(packGpuBatches(items, { limits, profile, oneRequestPerBatch: false }).map((b) => b.length)).toEqual([4]);
  });

  it("keeps each batch's predicted time under the invocation timeout", () => {
    const items = Array.from({ length: 40 }, (_, i) => item(`j${i}`, { promptTokens: 100, maxNewTokens: 2048 }));
    const batches = packGpuBatches(items, { limits: { ...limits, max_invocation_seconds: 20 }, profile, oneRequestPerBatch: false });
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches) {
      expect(staticBatchMs(profile, b.map((i) => ({ promptTokens: i.promptTokens, newTokens: i.maxNewTokens })))).toBeLessThanOrEqual(16_000);
    }
  });

  it("puts the most urgent first: priority, then deadline, then submission time", () => {
    const items = [
      item("late", { submittedMs: 5 }),
      item("early", { submittedMs: 1 }),
      item("urgent", { priority: 9, submittedMs: 9 }),
      item("deadline", { deadlineMs: 100, submittedMs: 8 }),
    ];
    expect([...items].sort(byUrgency).map((i) => i.id)).toEqual(["urgent", "deadline", "early", "late"]);
    const [first] = packGpuBatches(items, { limits: { ...limits, max_sequences: 2 }, profile, oneRequestPerBatch: false });
    expect(first?.map((i) => i.id)).toEqual(["urgent", "deadline"]);
  });

  it("places every item in exactly one batch, each within the limits (property)", () => {
    const arbitraryItem = fc.record({
      promptTokens: fc.integer({ min: 1, max: 3072 }),
      maxNewTokens: fc.integer({ min: 1, max: 2048 }),
      payloadBytes: fc.integer({ min: 1, max: 20_000 }),
      priority: fc.integer({ min: 0, max: 9 }),
      submittedMs: fc.integer({ min: 0, max: 1e6 }),
    });
    fc.assert(
      fc.property(fc.array(arbitraryItem, { maxLength: 300 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 5000, max: 120_000 }), (raw, maxSequences, budget) => {
        const items = raw.map((r, i) => ({ ...r, id: `j${i}` }));
        const packLimits = { ...limits, max_sequences: maxSequences, token_budget: budget };
        const batches = packGpuBatches(items, { limits: packLimits, profile, oneRequestPerBatch: false });
        const ids = batches.flat().map((i) => i.id);
        expect(ids.toSorted()).toEqual(items.map((i) => i.id).toSorted());
        for (const b of batches) {
          expect(b.length).toBeLessThanOrEqual(maxSequences);
          const tokens = b.reduce((s, i) => s + i.promptTokens + i.maxNewTokens, 0);
          if (b.length > 1) expect(tokens).toBeLessThanOrEqual(budget);
        }
      }),
      { numRuns: 200 },
    );
  });
});

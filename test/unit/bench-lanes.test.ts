import { describe, expect, it } from "vitest";
import { getProfile } from "../../shared/core/profiles.ts";
import { capacityAtInteractiveBound, type CapacityAtBound } from "../../tools/bench/lanes-capacity.ts";
import { batchDrain, capacityLeftRpm, type InteractiveRun, interactiveRun, lanesTargets, tokensWithin } from "../../tools/bench/lanes-summary.ts";
import type { Outcome } from "../../tools/bench/outcome.ts";

const job = (index: number, over: Partial<Outcome> & { startedMs?: number; doneMs?: number; submittedMs?: number } = {}): Outcome => {
  const { startedMs, doneMs, submittedMs, ...rest } = over;
  return {
    index, arrivalMs: index * 1000, promptTokens: 512, maxTokens: 512, status: "succeeded", completionTokens: 512,
    timeline: { submittedMs: submittedMs ?? index * 1000, startedMs, doneMs },
    ...rest,
  };
};

/** What the interactive jobs leave the batch, as the tests set it: 500 jobs a minute unless said. */
const atBound = (rpm = 500): CapacityAtBound => ({ batch_sequences: 12, step_ms: 8, interactive_p95_ms: 5000, rpm });

describe("lanes bench arithmetic", () => {
  it("counts a job's tokens in a window by its share of GPU time", () => {
    const jobs = [
      job(0, { startedMs: 0, doneMs: 1000 }), // wholly inside
      job(1, { startedMs: 9500, doneMs: 10_500 }), // half inside
      job(2, { startedMs: 20_000, doneMs: 21_000 }), // outside
      job(3, { startedMs: 2000 }), // no finish: not counted
    ];
    expect(tokensWithin(jobs, 0, 10_000)).toBeCloseTo(512 + 256);
  });

  it("leaves the batch the engine's ceiling less the interactive jobs' tokens, in batch jobs a minute", () => {
    // 4,693 tok/s is 550 jobs of 512 a minute; 60 interactive jobs of 512 a minute are 512 tok/s.
    expect(capacityLeftRpm({ engineTokensPerS: 4693.3, interactiveTokensPerS: 512, batchMaxTokens: 512 })).toBeCloseTo(490, 0);
    // Shorter interactive answers take less: 60 a minute of 128 tokens leave 535 of 550.
    expect(capacityLeftRpm({ engineTokensPerS: 4693.3, interactiveTokensPerS: 128, batchMaxTokens: 512 })).toBeCloseTo(535, 0);
    expect(capacityLeftRpm({ engineTokensPerS: 100, interactiveTokensPerS: 200, batchMaxTokens: 512 })).toBe(0);
  });

  it("takes the interactive tokens out of the GPU's to give the batch's drain", () => {
    const interactive = Array.from({ length: 60 }, (_, i) => job(i, { startedMs: i * 1000, doneMs: i * 1000 + 500 }));
    const drain = batchDrain({
      fromMs: 0, toMs: 60_000, gpuTokens: 60 * 512 + 450 * 512, simMs: 60_000, interactive,
      engineTokensPerS: (550 * 512) / 60, batchMaxTokens: 512, minOutstanding: 109, admissionLimit: 109, batchLeftAtEnd: 1000, atBound: atBound(),
    });
    expect(drain.interactive_tokens).toBeCloseTo(60 * 512);
    expect(drain.drain_rpm).toBeCloseTo(450);
    expect(drain.engine_direct_rpm).toBeCloseTo(550);
    expect(drain.capacity_left_rpm).toBeCloseTo(490);
    expect(drain.drain_of_capacity_left).toBeCloseTo(450 / 490);
    expect(drain.drain_ratio).toBeCloseTo(450 / 500);
  });

  it("summarizes time to start and GPU time apart", () => {
    const runs = [job(0, { arrivalMs: 0, submittedMs: 10, startedMs: 110, doneMs: 3110, finishedMs: 3200 }), job(1, { arrivalMs: 0, submittedMs: 10, startedMs: 1010, doneMs: 7010, finishedMs: 7100 })];
    const r = interactiveRun(runs.map((o) => ({ ...o, queueWaitMs: (o.timeline?.startedMs ?? 0) - (o.timeline?.submittedMs ?? 0) })), 10_000, { busyFraction: 1, meanBatch: 100 }, 1);
    expect(r.queue_wait_p50_ms).toBe(550);
    expect(r.gpu_p50_ms).toBe(4500);
    expect(r.ms_per_token_p50).toBeCloseTo(4500 / 512);
    expect(r.p95_ms).toBeCloseTo(3200 + 0.95 * 3900);
  });

  it("gives the drain against the capacity at the batch lane's cap beside the target's, the capacity at the interactive jobs' bound", () => {
    const input = { fromMs: 0, toMs: 60_000, gpuTokens: 150 * 512, simMs: 60_000, interactive: [], engineTokensPerS: (500 * 512) / 60, batchMaxTokens: 512, minOutstanding: 10, admissionLimit: 109, batchLeftAtEnd: 1000, atBound: atBound(160) };
    const drain = batchDrain({ ...input, cap: { slowdownPercent: 25, batchSequences: 8, stepMs: 8 } });
    // 8 sequences, a token each every 8 ms: 1,000 tokens a second, 117.2 jobs of 512 a minute.
    expect(drain.cap).toEqual({ slowdown_percent: 25, batch_sequences: 8, step_ms: 8, capacity_rpm: 117.1875, drain_ratio: 150 / 117.1875 });
    expect(drain.drain_ratio).toBeCloseTo(150 / 160);
    expect(drain.drain_of_capacity_left).toBeCloseTo(150 / 500);
    expect(lanesTargets({ p95_ms: 4000, latency_censored: 0 } as InteractiveRun, { p95_ms: 4000, latency_censored: 0 } as InteractiveRun, drain)[1]?.value).toBeCloseTo(150 / 160);
    expect(batchDrain(input).cap).toBeNull();
  });

  it("holds the interactive p95 to 1.25x idle, and a censored p95 never meets it", () => {
    const idle = { p95_ms: 4000, latency_censored: 0, queue_wait_p95_ms: 100, gpu_p95_ms: 3500 } as InteractiveRun;
    const drain = batchDrain({ fromMs: 0, toMs: 60_000, gpuTokens: 470 * 512, simMs: 60_000, interactive: [], engineTokensPerS: (500 * 512) / 60, batchMaxTokens: 512, minOutstanding: 109, admissionLimit: 109, batchLeftAtEnd: 1000, atBound: atBound() });
    const [p95, batch] = lanesTargets(idle, { ...idle, p95_ms: 5000 }, drain);
    expect(p95?.met).toBe(true);
    expect(batch?.met).toBe(true);
    expect(lanesTargets(idle, { ...idle, p95_ms: 5001 }, drain)[0]?.met).toBe(false);
    expect(lanesTargets(idle, { ...idle, p95_ms: 4500, latency_censored: 0.1 }, drain)[0]?.met).toBe(false);
  });

  it("does not count a drain measured while the batch ran short, but counts a copy left idle with the batch queued", () => {
    const idle = { p95_ms: 4000, latency_censored: 0 } as InteractiveRun;
    const drain = (over: { minOutstanding: number; batchLeftAtEnd: number | null; gpuTokens: number }) =>
      batchDrain({ fromMs: 0, toMs: 60_000, simMs: 60_000, interactive: [], engineTokensPerS: (500 * 512) / 60, batchMaxTokens: 512, admissionLimit: 109, atBound: atBound(), ...over });
    const short = lanesTargets(idle, idle, drain({ minOutstanding: 40, batchLeftAtEnd: 40, gpuTokens: 500 * 512 }))[1];
    expect(short?.met).toBe(false);
    expect(short?.measured).toContain("ran short");
    const stalled = lanesTargets(idle, idle, drain({ minOutstanding: 0, batchLeftAtEnd: 1700, gpuTokens: 90 * 512 }))[1];
    expect(stalled?.met).toBe(false);
    expect(stalled?.measured).not.toContain("ran short");
    expect(stalled?.value).toBeCloseTo(0.18);
    // Not known how much was left: the drain counts as measured.
    expect(lanesTargets(idle, idle, drain({ minOutstanding: 12, batchLeftAtEnd: null, gpuTokens: 480 * 512 }))[1]?.met).toBe(true);
  });

  describe("the capacity the interactive jobs leave (Llama-2-7B on an H100, 512 + 512 both, 60 interactive jobs a minute)", () => {
    const profile = getProfile("llama2-7b-bf16-h100");
    const shape = { promptTokens: 512, maxTokens: 512 };
    const at = (bound: number, idleP95Ms = 3900) =>
      capacityAtInteractiveBound({ profile, batch: shape, interactive: { ...shape, rpm: 60, idleP95Ms, concurrent: 3.5 }, bound, maxSequences: 256 });

    it("is a handful of batch sequences at 1.25x, far below the full copy the engine's ceiling assumes", () => {
      const point = at(1.25);
      // The model's p95 at the point is within the bound, one more sequence would pass it.
      expect(point.interactive_p95_ms).toBeLessThanOrEqual(1.25 * 3900);
      expect(point.batch_sequences).toBeGreaterThanOrEqual(8);
      expect(point.batch_sequences).toBeLessThanOrEqual(14);
      expect(at(1.25).rpm).toBeGreaterThan(120);
      expect(at(1.25).rpm).toBeLessThan(200);
      // A full copy of batch work (its KV cache holds ~110 of these) drains ~540 a minute, at ~3.5x.
      expect(at(3.5).batch_sequences).toBeGreaterThan(100);
      expect(at(3.5).rpm).toBeGreaterThan(500);
    });

    it("grows with the bound, and is nothing when no slowdown is allowed", () => {
      expect(at(1).batch_sequences).toBe(0);
      expect(at(1).rpm).toBe(0);
      const rpms = [1.1, 1.25, 1.5, 2].map((b) => at(b).rpm);
      expect(rpms).toEqual(rpms.toSorted((a, b) => a - b));
      expect(new Set(rpms).size).toBe(4);
    });

    it("leaves more where the idle p95 is longer (the same added step is a smaller share of it)", () => {
      expect(at(1.25, 8000).batch_sequences).toBeGreaterThan(at(1.25, 3900).batch_sequences);
    });
  });
});

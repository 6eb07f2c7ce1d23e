import { describe, expect, it } from "vitest";
import { h100Limits, h100Profile } from "../helpers/h100.ts";
import { staticBatchTimeline } from "#shared/core/latency-model";
import { createComponentEngine, type EngineClock, type InvocationOutcome } from "#local/sagemaker/engine";

const profile = h100Profile;
const limits = h100Limits;

/** Simulated time that moves only when the test says so; due timers run in time order. */
function manualClock() {
  type Timer = { atMs: number; order: number; fn: () => void; live: boolean };
  let nowMs = 0;
  let order = 0;
  const timers: Timer[] = [];
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  const clock: EngineClock = {
    now: () => nowMs,
    setTimer(fn, delayMs) {
      const timer = { atMs: nowMs + Math.max(0, delayMs), order: order++, fn, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
  };
  async function advanceTo(targetMs: number): Promise<void> {
    for (;;) {
      const due = timers.filter((t) => t.live && t.atMs <= targetMs).sort((a, b) => a.atMs - b.atMs || a.order - b.order)[0];
      if (!due) break;
      due.live = false;
      nowMs = due.atMs;
      due.fn();
      await settle();
    }
    nowMs = Math.max(nowMs, targetMs);
    await settle();
  }
  return { clock, advanceTo, runAll: () => advanceTo(Number.POSITIVE_INFINITY), now: () => nowMs };
}

/** Submits a request and records the outcome and the simulated time it was answered at. */
function track(promise: Promise<InvocationOutcome>, now: () => number) {
  const seen: { outcome?: InvocationOutcome; atMs?: number } = {};
  void promise.then((outcome) => {
    seen.outcome = outcome;
    seen.atMs = now();
  });
  return seen;
}

const seq = (promptTokens: number, newTokens: number) => ({ promptTokens, newTokens });

describe("component engine", () => {
  it("answers a lone request after the latency model's time for a batch of one", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 1, limits }, time.clock);

    // Act
    const seen = track(engine.submit([seq(512, 512)]), time.now);
    await time.runAll();

    // Assess
    const expectedMs = staticBatchTimeline(profile, [seq(512, 512)]).totalMs;
    expect(seen.outcome).toMatchObject({ kind: "done", copy: 0, batchSize: 1, startedMs: 0, finishedMs: expectedMs });
    expect(seen.atMs).toBe(expectedMs);
  });

  it("runs requests that arrive together as one batch, each answered when its sequence finishes", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 1, limits }, time.clock);
    const shapes = [seq(100, 64), seq(300, 16), seq(50, 256)];

    // Act
    const seen = shapes.map((s) => track(engine.submit([s]), time.now));
    await time.runAll();

    // Assess
    const { finishMs } = staticBatchTimeline(profile, shapes);
    expect(seen.map((s) => s.atMs)).toEqual(finishMs);
    expect(seen.map((s) => s.outcome?.kind === "done" && s.outcome.batchSize)).toEqual([3, 3, 3]);
    expect(engine.stats()[0]).toMatchObject({ invocations: 3, sequences: 3, batches: 1, meanBatchSize: 3, tokensGenerated: 336 });
  });

  it("queues requests that arrive while the copy is busy and runs them together next", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 1, limits }, time.clock);
    const first = track(engine.submit([seq(512, 512)]), time.now);
    await time.advanceTo(1000);
    const firstMs = staticBatchTimeline(profile, [seq(512, 512)]).totalMs;

    // Act
    const later = [seq(512, 128), seq(512, 128)].map((s) => track(engine.submit([s]), time.now));
    await time.advanceTo(2000);
    const queuedWhileBusy = engine.stats()[0]?.queueLength;
    await time.runAll();

    // Assess
    expect(queuedWhileBusy).toBe(2);
    expect(first.atMs).toBe(firstMs);
    const secondMs = staticBatchTimeline(profile, [seq(512, 128), seq(512, 128)]).totalMs;
    for (const s of later) {
      expect(s.outcome).toMatchObject({ kind: "done", batchSize: 2, arrivedMs: 1000, startedMs: firstMs });
      expect(s.atMs).toBeCloseTo(firstMs + secondMs, 6);
    }
    expect(engine.stats()[0]).toMatchObject({ batches: 2, busyMs: firstMs + secondMs, clockMs: firstMs + secondMs, outstanding: 0 });
  });

  it.each([
    { rule: "max_sequences", tight: { max_sequences: 4 }, sizes: [1, 4, 4, 2] },
    // Each request holds 1000 tokens; 2500 fit two of them.
    { rule: "token_budget", tight: { token_budget: 2500 }, sizes: [1, 2, 2, 2, 2, 1] },
  ])("keeps every batch within $rule", async ({ tight, sizes }) => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 1, limits: { ...limits, ...tight } }, time.clock);
    const total = sizes.reduce((a, b) => a + b, 0);
    const first = track(engine.submit([seq(500, 500)]), time.now);
    await time.advanceTo(0);

    // Act
    const rest = Array.from({ length: total - 1 }, () => track(engine.submit([seq(500, 500)]), time.now));
    await time.runAll();

    // Assess
    const batchSizes = new Map<number, number>();
    for (const s of [first, ...rest]) {
      if (s.outcome?.kind !== "done") throw new Error(`expected done, got ${JSON.stringify(s.outcome)}`);
      batchSizes.set(s.outcome.batchId, s.outcome.batchSize);
    }
    expect([...batchSizes.values()]).toEqual(sizes);
  });

  it("keeps a dynamic batch's list whole and in arrival order", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 1, limits: { ...limits, max_sequences: 4 } }, time.clock);
    const busy = track(engine.submit([seq(10, 100)]), time.now);
    await time.advanceTo(0);

    // Act: a single, a list of three, then a single that no longer fits behind them.
    const single = track(engine.submit([seq(10, 10)]), time.now);
    const list = track(engine.submit([seq(10, 10), seq(10, 20), seq(10, 30)]), time.now);
    const last = track(engine.submit([seq(10, 10)]), time.now);
    await time.runAll();

    // Assess
    const firstMs = staticBatchTimeline(profile, [seq(10, 100)]).totalMs;
    const second = staticBatchTimeline(profile, [seq(10, 10), seq(10, 10), seq(10, 20), seq(10, 30)]);
    expect(busy.atMs).toBe(firstMs);
    expect(single.outcome).toMatchObject({ batchSize: 4 });
    expect(single.atMs).toBeCloseTo(firstMs + (second.finishMs[0] ?? 0), 6);
    expect(list.atMs).toBeCloseTo(firstMs + second.totalMs, 6);
    expect(last.outcome).toMatchObject({ batchSize: 1, startedMs: firstMs + second.totalMs });
  });

  it("spreads requests over the copies, which run in parallel", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 2, limits: { ...limits, max_sequences: 1 } }, time.clock);

    // Act
    const seen = [0, 1, 2, 3].map(() => track(engine.submit([seq(512, 512)]), time.now));
    await time.runAll();

    // Assess
    const oneMs = staticBatchTimeline(profile, [seq(512, 512)]).totalMs;
    expect(seen.map((s) => s.outcome?.copy)).toEqual([0, 1, 0, 1]);
    expect(seen.map((s) => s.atMs)).toEqual([oneMs, oneMs, 2 * oneMs, 2 * oneMs]);
    expect(engine.stats().map((c) => c.batches)).toEqual([2, 2]);
  });

  it("sends a new request to the copy with the fewest outstanding requests", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 2, limits }, time.clock);
    const short = track(engine.submit([seq(10, 8)]), time.now);
    const long = track(engine.submit([seq(10, 1000)]), time.now);
    await time.advanceTo(500);

    // Act
    const next = track(engine.submit([seq(10, 8)]), time.now);
    await time.runAll();

    // Assess
    expect([short.outcome?.copy, long.outcome?.copy, next.outcome?.copy]).toEqual([0, 1, 0]);
  });

  it("times out a request that would answer after max_invocation_seconds, and one still queued by then", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 1, limits: { ...limits, max_invocation_seconds: 1 } }, time.clock);
    const quick = track(engine.submit([seq(10, 8)]), time.now);
    await time.advanceTo(0);

    // Act: the long one runs past its deadline; the one behind it never starts in time.
    const slow = track(engine.submit([seq(10, 512)]), time.now);
    const quickMs = staticBatchTimeline(profile, [seq(10, 8)]).totalMs;
    await time.advanceTo(quickMs + 1);
    const queued = track(engine.submit([seq(10, 8)]), time.now);
    await time.runAll();

    // Assess
    expect(quick.outcome?.kind).toBe("done");
    expect(slow.outcome).toMatchObject({ kind: "timeout" });
    expect(slow.atMs).toBe(1000);
    expect(queued.outcome).toMatchObject({ kind: "timeout" });
    expect(queued.atMs).toBe(quickMs + 1 + 1000);
    expect(engine.stats()[0]).toMatchObject({ timeouts: 2, batches: 2, outstanding: 0, queueLength: 0 });
  });

  it("refuses a request that can never fit one batch", () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine({ profile: "llama2-7b-bf16-h100", copies: 1, limits: { ...limits, max_sequences: 2 } }, time.clock);

    // Act & Assess
    expect(() => engine.submit([seq(1, 1), seq(1, 1), seq(1, 1)])).toThrow(RangeError);
  });
});

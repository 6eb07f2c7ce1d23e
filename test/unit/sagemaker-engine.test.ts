import { describe, expect, it } from "vitest";
import { decodeStepMs, iterationMs, prefillMs, staticBatchTimeline } from "#shared/core/latency-model";
import type { KvAdmission } from "#shared/core/routes";
import { admitContinuous, admitStatic, cacheTokens, PAGE_TOKENS } from "#local/sagemaker/admission";
import { createCopyEngine, type CopyJob, type JobRun, type SequenceWork } from "#local/sagemaker/copy-engine";
import { h100Profile } from "../helpers/h100.ts";
import { manualClock } from "../helpers/manual-clock.ts";

const profile = h100Profile;
const seq = (promptTokens: number, newTokens: number, maxNewTokens = newTokens): SequenceWork => ({ promptTokens, newTokens, maxNewTokens });
const many = (count: number, s: SequenceWork) => Array.from({ length: count }, () => s);

type Options = { batching?: "continuous" | "static"; kv?: KvAdmission; maxSequences?: number; tokenBudget?: number };

/** A copy on a manual clock, and a way to submit requests and see when each finished and how. */
function copyOnManualClock(options: Options = {}) {
  const time = manualClock();
  const iterations: { startMs: number; ms: number; batchSize: number; kvTokens: number; tokens: number; prefillTokens: number; preempted: number }[] = [];
  const engine = createCopyEngine({
    profile,
    limits: { maxSequences: options.maxSequences ?? 128, tokenBudget: options.tokenBudget ?? 112_000 },
    batching: options.batching ?? "continuous",
    kv: options.kv ?? "reserve",
    clock: time.clock,
    onIteration: (s) => iterations.push(s),
  });
  function submit(sequences: readonly SequenceWork[]) {
    const seen: { run?: JobRun; progress: { generated: readonly number[]; atMs: number }[] } = { progress: [] };
    const job: CopyJob = { sequences, onDone: (run) => (seen.run = run), onProgress: (generated, atMs) => seen.progress.push({ generated, atMs }) };
    engine.enqueue(job);
    return Object.assign(seen, { job });
  }
  return { time, engine, iterations, submit };
}

describe("admission", () => {
  const s = (promptTokens: number, maxNewTokens: number, generated = 0) => ({ promptTokens, maxNewTokens, generated });

  it.each([
    { kv: "reserve", sequence: s(100, 50, 10), tokens: 150 },
    { kv: "paged", sequence: s(100, 50, 10), tokens: 112 },
    { kv: "paged", sequence: s(15, 50, 0), tokens: PAGE_TOKENS },
  ] as const)("counts $kv cache tokens of a sequence", ({ kv, sequence, tokens }) => {
    expect(cacheTokens(sequence, kv)).toBe(tokens);
  });

  it("admits waiting sequences in order until one does not fit, never letting a later one overtake", () => {
    // Act
    const admission = admitContinuous([s(100, 100)], [s(100, 100), s(1000, 100), s(10, 10)], "reserve", { maxSequences: 8, tokenBudget: 1000 });

    // Assess
    expect(admission).toEqual({ admit: 1, preempt: 0 });
  });

  it("admits no more than max sequences", () => {
    const waiting = Array.from({ length: 5 }, () => s(1, 1));
    expect(admitContinuous([s(1, 1)], waiting, "reserve", { maxSequences: 3, tokenBudget: 1e6 })).toEqual({ admit: 2, preempt: 0 });
  });

  it("preempts the newest running sequences when the paged cache cannot hold their next tokens, and admits none then", () => {
    // Prepare: three sequences of 320 context tokens each (336 with the next token's page), in a cache of 1000.
    const running = [s(300, 100, 20), s(300, 100, 20), s(300, 100, 20)];

    // Act
    const admission = admitContinuous(running, [s(1, 1)], "paged", { maxSequences: 8, tokenBudget: 1000 });

    // Assess
    expect(admission).toEqual({ admit: 0, preempt: 1 });
  });

  it("takes whole requests for a static batch", () => {
    expect(admitStatic([[s(10, 10)], [s(10, 10), s(10, 10)], [s(10, 10)]], { maxSequences: 2, tokenBudget: 1e6 })).toBe(1);
    expect(admitStatic([[s(10, 10), s(10, 10)], [s(10, 10)]], { maxSequences: 3, tokenBudget: 1e6 })).toBe(3);
  });
});

describe("copy engine, continuous batching (LMI rolling batch, vLLM)", () => {
  it.each([
    { batch: 1, seconds: 3.1 },
    { batch: 16, seconds: 4.3 },
    { batch: 64, seconds: 8.2 },
  ])("runs $batch requests of 512 + 512 tokens arriving together in the calibration table's time (≈ $seconds s)", async ({ batch, seconds }) => {
    // Prepare
    const { time, submit } = copyOnManualClock();

    // Act
    const seen = many(batch, seq(512, 512)).map((s) => submit([s]));
    await time.runAll();

    // Assess
    const finished = Math.max(...seen.map((s) => s.run?.finishedMs ?? Number.NaN));
    expect(Math.abs(finished / 1000 / seconds - 1)).toBeLessThan(0.05);
    expect(finished).toBeCloseTo(staticBatchTimeline(profile, many(batch, seq(512, 512))).totalMs, 6);
  });

  it("makes the first token at the end of the prefill and one more at each iteration's end", async () => {
    // Prepare
    const { time, submit } = copyOnManualClock();

    // Act
    const seen = submit([seq(100, 3)]);
    await time.runAll();

    // Assess
    const first = prefillMs(profile, 100);
    expect(seen.progress).toEqual([
      { generated: [1], atMs: first },
      { generated: [2], atMs: first + decodeStepMs(profile, 1, 101) },
      { generated: [3], atMs: first + decodeStepMs(profile, 1, 101) + decodeStepMs(profile, 1, 102) },
    ]);
    expect(seen.run).toMatchObject({ startedMs: 0, firstTokenMs: first, finishedMs: seen.progress.at(-1)?.atMs, batchSize: 1 });
  });

  it("lets a request join the running batch at the next iteration, which also pays its prefill", async () => {
    // Prepare
    const { time, submit, iterations } = copyOnManualClock();
    const first = submit([seq(200, 50)]);
    await time.advanceTo(100);

    // Act
    const second = submit([seq(400, 5)]);
    await time.runAll();

    // Assess
    const joined = iterations.find((i) => i.prefillTokens === 400);
    expect(joined).toBeDefined();
    expect(joined?.batchSize).toBe(2);
    expect(second.run?.startedMs).toBe(joined?.startMs);
    expect(joined?.startMs).toBeGreaterThanOrEqual(100);
    // The running sequence had made `g` tokens: context 200 + g, and the newcomer's 400 prompt tokens.
    const before = iterations.filter((i) => (i.startMs ?? 0) < (joined?.startMs ?? 0)).length;
    expect(joined?.ms).toBeCloseTo(iterationMs(profile, { decodeSequences: 1, decodeContextTokens: 200 + before, prefillTokens: 400 }), 9);
    expect(second.run?.finishedMs).toBeLessThan(first.run?.finishedMs ?? 0);
    expect(first.run?.batchSize).toBe(2);
  });

  it("retires each sequence at its own length, so a short one does not wait for a long one", async () => {
    // Prepare
    const { time, submit } = copyOnManualClock();

    // Act
    const short = submit([seq(100, 10, 500)]);
    const long = submit([seq(100, 500)]);
    await time.runAll();

    // Assess
    expect(short.progress.at(-1)?.generated).toEqual([10]);
    expect(short.run?.finishedMs).toBe(short.progress.at(-1)?.atMs);
    expect(short.run?.finishedMs).toBeLessThan((long.run?.finishedMs ?? 0) / 10);
  });

  it("keeps requests beyond max sequences in the container's queue until a sequence leaves", async () => {
    // Prepare
    const { time, engine, submit } = copyOnManualClock({ maxSequences: 2 });

    // Act
    const seen = [submit([seq(10, 5)]), submit([seq(10, 50)]), submit([seq(10, 5)])];
    await time.advanceTo(1);
    const waitingEarly = engine.waitingRequests();
    await time.runAll();

    // Assess
    expect(waitingEarly).toBe(1);
    expect(seen[2]?.run?.startedMs).toBe(seen[0]?.run?.finishedMs);
  });

  it("admits by reservation (prompt + max new tokens) with reserve, and by tokens held with paged", async () => {
    // Prepare: a cache of 4,000 tokens; each request reserves 1,100 but holds about 100 at first.
    const runWith = async (kv: KvAdmission) => {
      const { time, submit, iterations } = copyOnManualClock({ kv, tokenBudget: 4000 });
      many(8, seq(100, 20, 1000)).forEach((s) => submit([s]));
      await time.runAll();
      return iterations[0]?.batchSize;
    };

    // Act
    const reserved = await runWith("reserve");
    const paged = await runWith("paged");

    // Assess
    expect(reserved).toBe(3);
    expect(paged).toBe(8);
  });

  it("preempts the newest sequence when the paged cache runs out, and recomputes its tokens when it comes back", async () => {
    // Prepare: two sequences that each grow to 1,200 tokens, in a cache of 2,000.
    const { time, submit, iterations } = copyOnManualClock({ kv: "paged", tokenBudget: 2000 });

    // Act
    const older = submit([seq(200, 1000)]);
    const newer = submit([seq(200, 1000)]);
    await time.runAll();

    // Assess
    expect(older.run?.preemptions).toBe(0);
    expect(newer.run?.preemptions).toBeGreaterThanOrEqual(1);
    expect(iterations.some((i) => i.preempted === 1)).toBe(true);
    // Back in, it prefills its prompt and every token it had made.
    expect(iterations.some((i) => i.prefillTokens > 200)).toBe(true);
    expect(newer.progress.at(-1)?.generated).toEqual([1000]);
    expect(Math.max(...iterations.map((i) => i.kvTokens))).toBeLessThanOrEqual(2000);
    expect(newer.run?.finishedMs).toBeGreaterThan(older.run?.finishedMs ?? 0);
  });

  it("takes a request out of the queue before it starts, and not after", async () => {
    // Prepare
    const { time, engine, submit } = copyOnManualClock({ maxSequences: 1 });
    const running = submit([seq(10, 100)]);
    const queued = submit([seq(10, 100)]);
    await time.advanceTo(1);

    // Act
    const withdrawnQueued = engine.withdraw(queued.job);
    const withdrawnRunning = engine.withdraw(running.job);
    await time.runAll();

    // Assess
    expect([withdrawnQueued, withdrawnRunning]).toEqual([true, false]);
    expect(queued.run).toBeUndefined();
    expect(running.run).toBeDefined();
  });

  it("aborts a running request as vLLM does: its sequence and KV leave at once, a waiting one takes the room, and it is never answered", async () => {
    // Prepare: room for one sequence; the second waits for it.
    const { time, engine, iterations, submit } = copyOnManualClock({ maxSequences: 1 });
    const aborted = submit([seq(100, 1000)]);
    const waiting = submit([seq(100, 5)]);
    await time.advanceTo(200);
    const before = engine.snapshot();

    // Act
    const stopped = engine.abort(aborted.job);
    const after = engine.snapshot();
    await time.runAll();

    // Assess
    expect(stopped).toBe(true);
    expect(before).toMatchObject({ runningSequences: 1, waitingSequences: 1, kvTokens: 1100 });
    expect(after).toMatchObject({ runningSequences: 0, waitingSequences: 1, kvTokens: 0 });
    expect(aborted.run).toBeUndefined();
    const abortedTokens = aborted.progress.at(-1)?.generated[0] ?? 0;
    expect(abortedTokens).toBeGreaterThan(0);
    expect(abortedTokens).toBeLessThan(1000);
    expect(waiting.run?.startedMs).toBeGreaterThan(200);
    expect(waiting.run?.batchSize).toBe(1);
    expect(iterations.reduce((sum, i) => sum + i.tokens, 0)).toBe(abortedTokens + 1 + 5);
    expect(engine.abort(aborted.job)).toBe(false);
    expect(engine.abort(waiting.job)).toBe(false);
  });

  it("aborts a request that has not started yet, which then never runs", async () => {
    // Prepare
    const { time, engine, submit } = copyOnManualClock({ maxSequences: 1 });
    const running = submit([seq(10, 50)]);
    const queued = submit([seq(10, 50)]);
    await time.advanceTo(1);

    // Act
    const stopped = engine.abort(queued.job);
    await time.runAll();

    // Assess
    expect(stopped).toBe(true);
    expect(queued.progress).toEqual([]);
    expect(queued.run).toBeUndefined();
    expect(running.run).toBeDefined();
  });
});

describe("copy engine, static batching (LMI dynamic batch)", () => {
  it("runs requests that arrive together as one batch, each answered when its sequences finish", async () => {
    // Prepare
    const { time, submit } = copyOnManualClock({ batching: "static" });
    const shapes = [seq(100, 64), seq(300, 16), seq(50, 256)];

    // Act
    const seen = shapes.map((s) => submit([s]));
    await time.runAll();

    // Assess
    const { finishMs } = staticBatchTimeline(profile, shapes);
    seen.forEach((s, i) => expect(s.run?.finishedMs).toBeCloseTo(finishMs[i] ?? 0, 6));
    expect(seen.map((s) => s.run?.batchSize)).toEqual([3, 3, 3]);
  });

  it("queues requests that arrive while a batch runs and runs them together next", async () => {
    // Prepare
    const { time, submit } = copyOnManualClock({ batching: "static" });
    const first = submit([seq(512, 512)]);
    await time.advanceTo(1000);

    // Act
    const later = [submit([seq(512, 128)]), submit([seq(512, 128)])];
    await time.runAll();

    // Assess
    const firstMs = staticBatchTimeline(profile, [seq(512, 512)]).totalMs;
    expect(first.run?.finishedMs).toBeCloseTo(firstMs, 6);
    for (const s of later) {
      expect(s.run?.startedMs).toBeCloseTo(firstMs, 6);
      expect(s.run?.finishedMs).toBeCloseTo(firstMs + staticBatchTimeline(profile, [seq(512, 128), seq(512, 128)]).totalMs, 6);
    }
  });

  it.each([
    { rule: "max_sequences", options: { maxSequences: 4 }, sizes: [1, 4, 4, 2] },
    // Each request reserves 1,000 tokens; 2,500 fit two of them.
    { rule: "token_budget", options: { tokenBudget: 2500 }, sizes: [1, 2, 2, 2, 2, 1] },
  ])("keeps every batch within $rule", async ({ options, sizes }) => {
    // Prepare
    const { time, submit, iterations } = copyOnManualClock({ batching: "static", ...options });
    submit([seq(500, 500)]);
    await time.advanceTo(1);

    // Act
    many(sizes.reduce((a, b) => a + b, 0) - 1, seq(500, 500)).forEach((s) => submit([s]));
    await time.runAll();

    // Assess: each batch starts with an iteration that prefills it.
    expect(iterations.filter((i) => i.prefillTokens > 0).map((i) => i.batchSize)).toEqual(sizes);
  });

  it("keeps a list whole and in arrival order", async () => {
    // Prepare
    const { time, submit } = copyOnManualClock({ batching: "static", maxSequences: 4 });
    submit([seq(10, 100)]);
    await time.advanceTo(1);

    // Act: a single, a list of three, then a single that no longer fits behind them.
    const single = submit([seq(10, 10)]);
    const list = submit([seq(10, 10), seq(10, 20), seq(10, 30)]);
    const last = submit([seq(10, 10)]);
    await time.runAll();

    // Assess
    expect(single.run?.batchSize).toBe(4);
    expect(list.progress.at(-1)?.generated).toEqual([10, 20, 30]);
    expect(last.run?.startedMs).toBe(list.run?.finishedMs);
  });
});

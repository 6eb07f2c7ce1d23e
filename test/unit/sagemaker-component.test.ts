import { describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { staticBatchTimeline } from "#shared/core/latency-model";
import type { Component, RouteCatalog } from "#shared/core/routes";
import { createComponentEngine, type Invocation, type Outcome } from "#local/sagemaker/component";
import { createFleet } from "#local/sagemaker/fleet";
import { h100Profile } from "../helpers/h100.ts";
import { manualClock } from "../helpers/manual-clock.ts";

const catalog = loadRouteCatalog("infra/routes.yml");
const llama2 = catalog.components.get("llama-2-7b-ic") as Component;
const seq = (promptTokens: number, newTokens: number) => ({ promptTokens, newTokens, maxNewTokens: newTokens });
const oneAlone = (promptTokens: number, newTokens: number) => staticBatchTimeline(h100Profile, [seq(promptTokens, newTokens)]).totalMs;

/** A component of `copies` copies, ready from the start, on a manual clock. */
function componentOnManualClock(change: Partial<Component> = {}, copies = 1) {
  const time = manualClock();
  const engine = createComponentEngine({ ...llama2, ...change }, { clock: time.clock, bucketMs: 1000 });
  for (let i = 0; i < copies; i++) engine.addCopy({ instance: 0, gpus: [i] }, 0);
  function call(invocation: Invocation) {
    const routed = engine.invoke(invocation);
    const seen: { copy: number; outcome?: Outcome; atMs?: number; queueFull: boolean; abandon(): void } = {
      copy: routed.copy,
      queueFull: routed.kind === "queue-full",
      abandon: () => (routed.kind === "accepted" ? routed.abandon() : undefined),
    };
    if (routed.kind === "accepted") {
      void routed.outcome.then((outcome) => {
        seen.outcome = outcome;
        seen.atMs = time.now();
      });
    }
    return seen;
  }
  return { time, engine, call };
}

describe("component engine", () => {
  it("runs its copies in parallel", async () => {
    // Prepare
    const { time, call } = componentOnManualClock({ limits: { ...llama2.limits, max_sequences: 1 } }, 2);

    // Act
    const seen = [0, 1, 2, 3].map(() => call({ sequences: [seq(512, 512)] }));
    await time.runAll();

    // Assess
    const oneMs = oneAlone(512, 512);
    expect(seen.map((s) => s.copy)).toEqual([0, 1, 0, 1]);
    seen.forEach((s, i) => expect(s.atMs).toBeCloseTo(i < 2 ? oneMs : 2 * oneMs, 6));
  });

  it("sends a new request to the copy with the fewest outstanding requests", async () => {
    // Prepare
    const { time, call } = componentOnManualClock({}, 2);
    const short = call({ sequences: [seq(10, 8)] });
    const long = call({ sequences: [seq(10, 1000)] });
    await time.advanceTo(500);

    // Act
    const next = call({ sequences: [seq(10, 8)] });
    await time.runAll();

    // Assess
    expect([short.copy, long.copy, next.copy]).toEqual([0, 1, 0]);
  });

  it("times out a request that would answer after max_invocation_seconds, and one still queued then, which never runs", async () => {
    // Prepare
    const { time, engine, call } = componentOnManualClock({ limits: { ...llama2.limits, max_invocation_seconds: 1, max_sequences: 1 } });

    // Act
    const slow = call({ sequences: [seq(10, 512)] });
    const queued = call({ sequences: [seq(10, 8)] });
    await time.runAll();

    // Assess
    expect(slow.outcome).toMatchObject({ kind: "timeout", answeredMs: 1000 });
    expect(slow.atMs).toBe(1000);
    expect(queued.outcome).toMatchObject({ kind: "timeout", answeredMs: 1000 });
    const [copy] = engine.stats().copies;
    expect(copy).toMatchObject({ timeouts: 2, concurrentRequests: 0, waitingRequests: 0, tokensGenerated: 512 });
  });

  it("stops a vLLM request whose caller left, started or queued, at once, and answers nobody", async () => {
    // Prepare
    const { time, engine, call } = componentOnManualClock({ engine: "vllm-openai", kv_admission: "paged", limits: { ...llama2.limits, max_sequences: 1 } });
    const started = call({ sequences: [seq(10, 1000)] });
    const queued = call({ sequences: [seq(10, 1000)] });
    const next = call({ sequences: [seq(10, 8)] });
    await time.advanceTo(300);

    // Act
    started.abandon();
    queued.abandon();
    await time.advanceTo(301);
    const [afterAbort] = engine.stats().copies;
    await time.runAll();

    // Assess
    expect(started.outcome).toMatchObject({ kind: "aborted", arrivedMs: 0, abortedMs: 300 });
    expect(queued.outcome).toMatchObject({ kind: "aborted", abortedMs: 300 });
    expect(afterAbort).toMatchObject({ concurrentRequests: 1, abandoned: 2 });
    expect(next.outcome).toMatchObject({ kind: "done" });
    expect(next.atMs).toBeLessThan(300 + 2 * oneAlone(10, 8));
  });

  it("runs an LMI request whose caller left to its end once started, and drops it while it waits in the queue", async () => {
    // Prepare
    const { time, engine, call } = componentOnManualClock({ limits: { ...llama2.limits, max_sequences: 1 } });
    const started = call({ sequences: [seq(10, 100)] });
    const queued = call({ sequences: [seq(10, 100)] });
    await time.advanceTo(100);

    // Act
    started.abandon();
    queued.abandon();
    await time.runAll();

    // Assess
    expect(started.outcome).toMatchObject({ kind: "done" });
    expect(started.atMs).toBeCloseTo(oneAlone(10, 100), 6);
    expect(queued.outcome).toMatchObject({ kind: "aborted", abortedMs: 100 });
    const [copy] = engine.stats().copies;
    expect(copy).toMatchObject({ abandoned: 1, concurrentRequests: 0, tokensGenerated: 100 });
  });

  it("refuses a request when the container's queue is full", async () => {
    // Prepare
    const { time, call } = componentOnManualClock({ max_queue_length: 2, limits: { ...llama2.limits, max_sequences: 1 } });
    call({ sequences: [seq(10, 100)] });
    await time.advanceTo(1);

    // Act
    const queued = [call({ sequences: [seq(10, 10)] }), call({ sequences: [seq(10, 10)] })];
    const refused = call({ sequences: [seq(10, 10)] });
    await time.runAll();

    // Assess
    expect(queued.map((s) => s.queueFull)).toEqual([false, false]);
    expect(refused.queueFull).toBe(true);
  });

  it("hands a slow call to the container late, and the wait counts toward the timeout", async () => {
    // Prepare
    const { time, call } = componentOnManualClock({ limits: { ...llama2.limits, max_invocation_seconds: 5 } });

    // Act
    const late = call({ sequences: [seq(10, 8)], delayMs: 2000 });
    const tooLate = call({ sequences: [seq(10, 8)], delayMs: 6000 });
    await time.runAll();

    // Assess
    expect(late.outcome).toMatchObject({ kind: "done", arrivedMs: 0, startedMs: 2000 });
    expect(late.atMs).toBeCloseTo(2000 + oneAlone(10, 8), 6);
    expect(tooLate.outcome).toMatchObject({ kind: "timeout", answeredMs: 5000 });
  });

  it("is warming until its first copy is ready", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine(llama2, { clock: time.clock });
    const before = engine.readiness();
    engine.addCopy({ instance: 0, gpus: [0] }, 300_000);

    // Act
    const warming = engine.readiness();
    await time.advanceTo(300_000);
    const ready = engine.readiness();

    // Assess
    expect(before).toEqual({ ready: false, reason: "no-copies" });
    expect(warming).toEqual({ ready: false, reason: "warming", readyInMs: 300_000 });
    expect(ready).toEqual({ ready: true });
  });

  it("stops routing to a draining copy, which gives back its GPUs once it has answered", async () => {
    // Prepare
    const { time, engine, call } = componentOnManualClock({}, 2);
    const held = call({ sequences: [seq(10, 100)] });
    const other = call({ sequences: [seq(10, 100)] });

    // Act
    engine.drainCopies(1);
    const whileDraining = engine.placements().length;
    const next = call({ sequences: [seq(10, 5)] });
    await time.runAll();

    // Assess
    expect([held.copy, other.copy, next.copy]).toEqual([0, 1, 0]);
    expect(other.outcome?.kind).toBe("done");
    expect(whileDraining).toBe(2);
    expect(engine.placements()).toEqual([{ instance: 0, gpus: [0] }]);
    expect(engine.copyCount()).toBe(1);
  });

  it("reports what CloudWatch would, and the GPU's batch, cache and busy time", async () => {
    // Prepare
    const { time, engine, call } = componentOnManualClock();

    // Act
    [0, 1, 2, 3].forEach(() => call({ sequences: [seq(512, 512)] }));
    await time.advanceTo(2000);
    const during = engine.stats().copies[0];
    await time.advanceTo(10_000);
    const after = engine.stats();

    // Assess
    const totalMs = staticBatchTimeline(h100Profile, Array.from({ length: 4 }, () => seq(512, 512))).totalMs;
    expect(during).toMatchObject({ concurrentRequests: 4, runningSequences: 4, kvCacheTokens: { now: 4 * 1024, capacity: llama2.limits.token_budget } });
    expect(after.invocations).toBe(4);
    expect(after.modelLatencyMs).toMatchObject({ count: 4, max: expect.closeTo(totalMs, 6) });
    const copy = after.copies[0];
    expect(copy).toMatchObject({ state: "ready", invocations: 4, concurrentRequests: 0, maxConcurrentRequests: 4, tokensGenerated: 2048, iterations: 512 });
    expect(copy?.batchSize).toMatchObject({ max: 4, mean: 4 });
    expect(copy?.busyMs).toBeCloseTo(totalMs, 6);
    expect(copy?.gpuBusyFraction).toBeCloseTo(totalMs / 10_000, 6);
    expect(copy?.series.map((b) => b.startMs)).toEqual(Array.from({ length: Math.ceil(totalMs / 1000) }, (_, i) => i * 1000));
    expect(copy?.series[0]).toMatchObject({ busyFraction: expect.closeTo(1, 2), maxBatchSize: 4, maxKvTokens: 4 * 1024 });
  });
});

describe("fleet", () => {
  it("places the components of infra/routes.yml on separate GPUs of their shared endpoint", () => {
    // Act
    const fleet = createFleet(catalog, { clock: manualClock().clock });

    // Assess
    const copies = fleet.stats().components.flatMap((c) => c.copies.map((copy) => ({ component: c.component, instance: copy.instance, gpus: copy.gpus })));
    expect(copies).toEqual([
      { component: "llama-2-7b-ic", instance: 0, gpus: [0] },
      { component: "llama-3-8b-ic", instance: 0, gpus: [1] },
      { component: "llama-3-8b-ic", instance: 0, gpus: [2] },
      { component: "llama-3-1b-ic", instance: 0, gpus: [3] },
    ]);
    expect(fleet.stats().endpoints).toEqual([expect.objectContaining({ endpoint: "batchline-h100", gpusInUse: 4, gpusPerInstance: 8 })]);
  });

  it("adds copies on free GPUs that serve after the warm-up, and refuses copies that do not fit", async () => {
    // Prepare
    const time = manualClock();
    const fleet = createFleet(catalog, { clock: time.clock });

    // Act
    const grown = fleet.scale("llama-3-1b-ic", 4);
    const tooMany = fleet.scale("llama-2-7b-ic", 3);
    const warming = fleet.engine("llama-3-1b-ic")?.stats().copies.map((c) => c.state);
    await time.advanceTo(300_000);
    const later = fleet.engine("llama-3-1b-ic")?.stats().copies.map((c) => [c.state, c.gpus]);

    // Assess
    expect(grown).toEqual({ ok: true });
    expect(tooMany).toMatchObject({ ok: false, message: expect.stringContaining("has no room") });
    expect(warming).toEqual(["ready", "warming", "warming", "warming"]);
    expect(later).toEqual([["ready", [3]], ["ready", [4]], ["ready", [5]], ["ready", [6]]]);
  });

  it("refuses a catalog whose copies cannot be placed", () => {
    // Prepare
    const crowded: RouteCatalog = { ...catalog, components: new Map([...catalog.components].map(([n, c]) => [n, { ...c, copies: 3 }])) };

    // Act & Assess
    expect(() => createFleet(crowded, { clock: manualClock().clock })).toThrow(/endpoint batchline-h100: copy 3 of llama-3-1b-ic needs 1 GPUs/);
  });
});

import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { Settlements } from "#shared/app/batcher/settlement";
import { parseJobMessage, toPackItem } from "#shared/app/batcher/messages";
import { submitJob } from "#shared/app/submit";
import { ModelWarmingError } from "#shared/core/errors";
import { versionOf, type JobRecord } from "#shared/core/jobs";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { memoryDeps, subscribeToJob } from "../../helpers/fakes.ts";

type Deps = ReturnType<typeof memoryDeps>;
const MODEL = "llama-2-7b";
const COMPONENT = "llama-2-7b-ic";

async function withSettings(deps: Deps, patch: object): Promise<void> {
  const route = deps.catalog.routes.get(MODEL);
  if (!route) throw new Error("no default route");
  await deps.routeSettings.put(MODEL, { ...defaultRouteSettings(route), ...patch }, deps.clock.now());
}

/**
 * Runs the batcher on what the queue holds, then moves the clock on by the delay its requeues
 * asked for (SQS would hide the messages that long), until the queue is empty; the rounds it took.
 */
async function runUntilQueueEmpty(deps: Deps, maxRounds: number): Promise<number> {
  for (let round = 1; round <= maxRounds; round++) {
    const delays = deps.queue.requeueDelays.length;
    await processDelivery(deps, deps.queue.takeDelivery(), { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });
    if (deps.queue.visible.length === 0) return round;
    deps.time.advance(Math.max(...deps.queue.requeueDelays.slice(delays)) * 1000);
  }
  throw new Error(`the queue still holds jobs after ${maxRounds} rounds`);
}

const submit = async (deps: Deps, overrides: object = {}): Promise<JobRecord> =>
  (await submitJob(deps, "acme", { model: MODEL, prompt: "Hello.", max_tokens: 8, ...overrides })).job;

describe("a component that never becomes ready", () => {
  it("ends its jobs FAILED component_not_ready once max_warming_wait_seconds have passed since their first wait", async () => {
    // Prepare: every call refused for lack of capacity, as a component at zero that nobody wakes.
    const deps = memoryDeps();
    await withSettings(deps, { warming_recheck_seconds: 30, max_warming_wait_seconds: 100, top_up: false });
    deps.invoker.behaviour = () => new ModelWarmingError(`endpoint batchline-h100: inference component ${COMPONENT} has no capacity`);
    const jobs = [await submit(deps), await submit(deps)];
    const startMs = deps.time.nowMs;

    // Act
    const rounds = await runUntilQueueEmpty(deps, 20);

    // Assess: waits of 30, 30, 30 and the 10 s the bound leaves, then the end.
    expect(rounds).toBe(5);
    expect(deps.queue.requeueDelays).toEqual([30, 30, 30, 30, 30, 30, 10, 10]);
    expect(deps.time.nowMs - startMs).toBe(100_000);
    for (const job of jobs) {
      expect(deps.jobs.jobs.get(job.job_id)).toMatchObject({
        status: "FAILED",
        error: { code: "component_not_ready", message: `no copy of ${COMPONENT} became ready in 100 s of waiting (max_warming_wait_seconds: 100)` },
      });
    }
  });

  it("ends the jobs of a route whose every component warms (the fleet says so) without calling it", async () => {
    // Prepare: the fleet shows a copy starting that never serves.
    const deps = memoryDeps();
    await withSettings(deps, { warming_recheck_seconds: 20, max_warming_wait_seconds: 60, top_up: false });
    deps.fleet.counts.set(COMPONENT, { current: 0, desired: 1 });
    const job = await submit(deps);

    // Act
    const rounds = await runUntilQueueEmpty(deps, 20);

    // Assess
    expect(deps.invoker.calls).toHaveLength(0);
    expect(rounds).toBe(4);
    expect(deps.jobs.jobs.get(job.job_id)).toMatchObject({ status: "FAILED", error: { code: "component_not_ready" } });
    expect(deps.jobs.jobs.get(job.job_id)?.error?.message).toContain("in 60 s of waiting");
  });

  it("expires a job at its deadline while it waits, checking on it when the deadline comes", async () => {
    // Prepare
    const deps = memoryDeps();
    await withSettings(deps, { warming_recheck_seconds: 30, top_up: false });
    deps.fleet.counts.set(COMPONENT, { current: 0, desired: 1 });
    const job = await submit(deps, { deadline: new Date(deps.time.nowMs + 45_000).toISOString() });

    // Act
    await runUntilQueueEmpty(deps, 20);

    // Assess
    expect(deps.queue.requeueDelays).toEqual([30, 15]);
    expect(deps.jobs.jobs.get(job.job_id)).toMatchObject({ status: "EXPIRED", error: { code: "deadline_exceeded" } });
  });

  it("runs a job whose component becomes ready within the bound", async () => {
    // Prepare
    const deps = memoryDeps();
    await withSettings(deps, { warming_recheck_seconds: 30, max_warming_wait_seconds: 100, top_up: false });
    deps.fleet.counts.set(COMPONENT, { current: 0, desired: 1 });
    const job = await submit(deps);
    await processDelivery(deps, deps.queue.takeDelivery(), { topUpUntil: new Date(deps.time.nowMs + 60_000) });
    deps.fleet.counts.set(COMPONENT, { current: 1, desired: 1 });
    deps.time.advance(30_000);

    // Act
    await runUntilQueueEmpty(deps, 5);

    // Assess
    expect(deps.jobs.jobs.get(job.job_id)?.status).toBe("SUCCEEDED");
  });
});

describe("the bound's clock in the message", () => {
  it("rides in the requeued message's body, and a requeue for lack of room (not warming) starts it afresh", async () => {
    // Prepare
    const deps = memoryDeps();
    await withSettings(deps, { warming_recheck_seconds: 30, top_up: false });
    deps.fleet.counts.set(COMPONENT, { current: 0, desired: 1 });
    await submit(deps);
    await processDelivery(deps, deps.queue.takeDelivery(), { topUpUntil: new Date(deps.time.nowMs + 60_000) });
    const [requeued] = deps.queue.takeDelivery();
    const message = requeued && parseJobMessage(requeued.body);
    if (!requeued || !message) throw new Error("no requeued job message");
    const settlements = new Settlements(deps.queue, MODEL);
    const pending = { source: { kind: "delivered" as const, ...requeued, lane: requeued.lane }, message, item: toPackItem(message, "llama2"), receivedMs: deps.time.nowMs };

    // Act
    await settlements.requeueAll([pending]);

    // Assess
    expect(message.warming_since).toBe(new Date(Date.parse("2026-11-27T12:00:00.000Z")).toISOString());
    const [again] = deps.queue.takeDelivery();
    expect(again && parseJobMessage(again.body)).toEqual({ ...message, warming_since: undefined });
    expect(again?.body).not.toContain("warming_since");
  });
});

describe("a watched job put back for a warming component", () => {
  it("moves its watch on to the version the note gave it, so its clients keep its job.waiting events", async () => {
    // Prepare: a job watched at its version, then refused once for lack of capacity.
    const deps = memoryDeps();
    await withSettings(deps, { warming_recheck_seconds: 30, top_up: false });
    deps.invoker.behaviour = () => new ModelWarmingError(`endpoint batchline-h100: inference component ${COMPONENT} has no capacity`);
    const job = await submit(deps);
    await subscribeToJob(deps, job.job_id, "conn-1");
    const watched = deps.jobs.jobs.get(job.job_id) ?? job;
    await deps.queueBoard.watch(MODEL, { jobId: job.job_id, lane: "interactive", ticket: 1, promptTokens: job.prompt_tokens, maxTokens: 8, version: versionOf(watched) }, "conn-1", new Date(deps.time.nowMs + 60_000));

    // Act
    await processDelivery(deps, deps.queue.takeDelivery(), { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });

    // Assess
    const noted = deps.jobs.jobs.get(job.job_id);
    expect(noted?.waiting_reason).toBe("warming");
    expect(versionOf(noted ?? job)).toBeGreaterThan(versionOf(watched));
    expect((await deps.queueBoard.watches(MODEL)).map((w) => w.version)).toEqual([versionOf(noted ?? job)]);
  });
});

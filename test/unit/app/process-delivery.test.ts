import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitBatch, submitJob } from "#shared/app/submit";
import { ModelRejectedError, ModelWarmingError, RetryableError } from "#shared/core/errors";
import type { JobRecord } from "#shared/core/jobs";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { buildRouteCatalog } from "#shared/core/routes";
import { runBatcher } from "../../helpers/batcher.ts";
import { connectionOf, memoryDeps, subscribeToJob } from "../../helpers/fakes.ts";

type Deps = ReturnType<typeof memoryDeps>;

async function submitMany(deps: Deps, count: number, overrides: object = {}): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  for (let i = 0; i < count; i++) {
    jobs.push((await submitJob(deps, "acme", { model: "llama-2-7b", prompt: `prompt ${i}`, max_tokens: 8, ...overrides })).job);
  }
  return jobs;
}

const inAMinute = (deps: Deps) => ({ topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });


async function withSettings(deps: Deps, patch: object): Promise<void> {
  const route = deps.catalog.routes.get("llama-2-7b");
  if (!route) throw new Error("no default route");
  await deps.routeSettings.put("llama-2-7b", { ...defaultRouteSettings(route), ...patch }, deps.clock.now());
}

describe("processDelivery on a rolling-batch engine", () => {
  it("runs each job as its own call, together in one window, and records result, timings and window", async () => {
    const deps = memoryDeps();
    const jobs = await submitMany(deps, 5);
    const { retry } = await runBatcher(deps);
    expect(retry).toEqual([]);
    expect(deps.invoker.calls.map((c) => c.inputs.map((i) => i.prompt))).toEqual(jobs.map((_, i) => [`prompt ${i}`]));
    for (const job of jobs) {
      const stored = deps.jobs.jobs.get(job.job_id);
      expect(stored).toMatchObject({ status: "SUCCEEDED", attempt: 1, gpu_batch_size: 5, component: "llama-2-7b-ic", result: { completion_tokens: 8, prompt_tokens: job.prompt_tokens } });
      expect(stored?.started_at).toBeDefined();
      expect(stored?.finished_at).toBeDefined();
    }
    expect(new Set(jobs.map((j) => deps.jobs.jobs.get(j.job_id)?.gpu_batch_id)).size).toBe(1);
  });

  it("notifies subscribers of running and succeeded", async () => {
    const deps = memoryDeps();
    const [job] = await submitMany(deps, 1);
    await subscribeToJob(deps, job!.job_id, "conn-1");
    await runBatcher(deps);
    expect(deps.notifier.eventsFor("conn-1").map((e) => e.type)).toEqual(["job.running", "job.succeeded"]);
  });

  it("fails a prompt the model rejects alone, and backs off a throttled one", async () => {
    const deps = memoryDeps();
    const [bad, throttled, good] = await submitMany(deps, 3);
    deps.invoker.behaviour = (input) =>
      input.prompt === "prompt 0" ? new ModelRejectedError("model rejected the request: bad prompt")
      : input.prompt === "prompt 1" ? new RetryableError("throttled", "throttled")
      : { text: "ok", completion_tokens: 1, finish_reason: "stop" };
    const window = deps.queue.takeDelivery();
    const { retry } = await processDelivery(deps, window, inAMinute(deps));
    expect(retry).toEqual([window[1]?.messageId]);
    // Attempt 1 backs off up to 2 s; the fake random gives half of it.
    expect(deps.queue.released).toEqual([{ messageId: window[1]?.messageId, delaySeconds: 1 }]);
    expect(deps.jobs.jobs.get(bad!.job_id)).toMatchObject({ status: "FAILED", error: { code: "model_error", message: "model rejected the request: bad prompt" } });
    expect(deps.jobs.jobs.get(throttled!.job_id)?.status).toBe("RUNNING");
    expect(deps.jobs.jobs.get(good!.job_id)?.status).toBe("SUCCEEDED");
  });

  it("never runs or writes a finished job twice when its message comes again, and re-notifies it", async () => {
    const deps = memoryDeps();
    const [job] = await submitMany(deps, 1);
    const window = deps.queue.takeDelivery();
    await processDelivery(deps, window, inAMinute(deps));
    await subscribeToJob(deps, job!.job_id, "late");
    const { retry } = await processDelivery(deps, window, inAMinute(deps));
    expect(retry).toEqual([]);
    expect(deps.invoker.calls).toHaveLength(1);
    expect(deps.jobs.finishes).toHaveLength(1);
    expect(deps.notifier.eventsFor("late").map((e) => e.type)).toEqual(["job.succeeded"]);
  });

  it("fences a batcher that lost its claim: only the latest attempt writes", async () => {
    const deps = memoryDeps();
    const [job] = await submitMany(deps, 1);
    // A first batcher claims the job and stalls; the message comes back and a second one runs it.
    await deps.jobs.claim(job!.job_id, { gpu_batch_id: "w-old", gpu_batch_size: 1, component: "llama-2-7b-ic" }, deps.clock.now());
    await runBatcher(deps);
    const late = await deps.jobs.finish(job!.job_id, 1, { status: "SUCCEEDED", result: { text: "stale", prompt_tokens: 1, completion_tokens: 1, finish_reason: "stop" } }, deps.clock.now());
    expect(late).toBeUndefined();
    expect(deps.jobs.jobs.get(job!.job_id)).toMatchObject({ status: "SUCCEEDED", attempt: 2 });
    expect(deps.jobs.finishes).toEqual([{ jobId: job!.job_id, attempt: 2, status: "SUCCEEDED" }]);
  });

  it("leaves a message that is not ours for the DLQ", async () => {
    const deps = memoryDeps();
    const { retry } = await processDelivery(deps, [{ messageId: "x", receiptHandle: "rx", body: '{"hello":1}' }, { messageId: "y", receiptHandle: "ry", body: "not json" }], inAMinute(deps));
    expect(retry).toEqual(["x", "y"]);
  });

  it("holds no more than a copy admits: 130 small jobs start as 128 and then 2", async () => {
    const deps = memoryDeps();
    const jobs = await submitMany(deps, 130);
    const release = Promise.withResolvers<void>();
    deps.invoker.gate = deps.time.holdWhile(release.promise);
    const running = runBatcher(deps);
    await expect.poll(() => deps.invoker.inFlight).toBe(128);
    release.resolve();
    await running;
    expect(deps.invoker.maxInFlight).toBe(128);
    const sizes = jobs.map((j) => deps.jobs.jobs.get(j.job_id)?.gpu_batch_size);
    expect(sizes.filter((s) => s === 128)).toHaveLength(128);
    expect(sizes.filter((s) => s === 2)).toHaveLength(2);
  });

  it("keeps to ops' cap on sequences in flight per copy", async () => {
    const deps = memoryDeps();
    await withSettings(deps, { max_in_flight_per_copy: 2, top_up: false });
    const jobs = await submitMany(deps, 5);
    await runBatcher(deps);
    expect(deps.invoker.maxInFlight).toBe(2);
    expect(jobs.every((j) => deps.jobs.jobs.get(j.job_id)?.status === "SUCCEEDED")).toBe(true);
  });

  it("tops the window up from the queue while the copies have room, deleting what it pulled once done", async () => {
    const deps = memoryDeps();
    const jobs = await submitMany(deps, 23);
    const report = await runBatcher(deps, 3);
    expect(report.pulled).toBe(20);
    expect(jobs.every((j) => deps.jobs.jobs.get(j.job_id)?.status === "SUCCEEDED")).toBe(true);
    expect(deps.queue.deleted).toHaveLength(20);
    expect(deps.queue.visible).toHaveLength(0);
    expect(deps.queue.inFlight.size).toBe(3); // the delivered three: the event source mapping deletes those
  });

  it("leaves the queue alone when ops turn top-up off", async () => {
    const deps = memoryDeps();
    await withSettings(deps, { top_up: false });
    await submitMany(deps, 5);
    const report = await runBatcher(deps, 2);
    expect(report.pulled).toBe(0);
    expect(deps.queue.visible).toHaveLength(3);
  });

  it("shares a copy with another batcher's work and puts back what found no room in time", async () => {
    const deps = memoryDeps();
    await withSettings(deps, { max_in_flight_per_copy: 4, top_up: false });
    await deps.ledger.publish("llama-2-7b-ic", "other-batcher", { load: { sequences: 4, tokens: 100 } }, new Date(deps.clock.now().getTime() + 60_000));
    const [job] = await submitMany(deps, 1);
    const window = deps.queue.takeDelivery();
    const report = await processDelivery(deps, window, { topUpUntil: new Date(deps.clock.now().getTime() - 10_000) });
    expect(report.retry).toEqual([]);
    expect(deps.invoker.calls).toHaveLength(0);
    expect(deps.queue.requeued).toEqual([window[0]?.messageId]);
    expect(deps.queue.visible).toHaveLength(1);
    expect(deps.jobs.jobs.get(job!.job_id)?.status).toBe("QUEUED");
  });

  it("lets the room go to another batcher's job that has waited longer, pulling nothing meanwhile", async () => {
    const deps = memoryDeps();
    const now = deps.clock.now().getTime();
    // Batch work on both sides (priority below the interactive lane's): between batch holders the longer wait goes first.
    await deps.ledger.publish("llama-2-7b-ic", "other-batcher", { load: { sequences: 1, tokens: 1024 }, oldestWaitingMs: now - 5_000 }, new Date(now + 60_000));
    const [job] = await submitMany(deps, 3, { priority: 1 });
    const window = deps.queue.takeDelivery("llama-2-7b", 1);

    const report = await processDelivery(deps, window, { topUpUntil: new Date(now - 10_000) });

    expect(deps.invoker.calls).toHaveLength(0);
    expect(report.pulled).toBe(0);
    expect(deps.queue.requeued).toEqual([window[0]?.messageId]);
    expect(deps.jobs.jobs.get(job!.job_id)?.status).toBe("QUEUED");
  });

  it("starts its own job when another batcher's has not waited a second longer", async () => {
    const deps = memoryDeps();
    const now = deps.clock.now().getTime();
    await deps.ledger.publish("llama-2-7b-ic", "other-batcher", { load: { sequences: 1, tokens: 1024 }, oldestWaitingMs: now - 500 }, new Date(now + 60_000));
    const [job] = await submitMany(deps, 1);

    await runBatcher(deps);

    expect(deps.invoker.calls).toHaveLength(1);
    expect(deps.jobs.jobs.get(job!.job_id)?.status).toBe("SUCCEEDED");
  });

  it("reports batch progress to the batch's subscribers, not each line's events", async () => {
    const deps = memoryDeps();
    const line = (id: string) => JSON.stringify({ custom_id: id, body: { model: "llama-2-7b", prompt: id, max_tokens: 2 } });
    const { batch } = await submitBatch(deps, "acme", `${line("a")}\n${line("b")}`);
    await deps.subscriptions.subscribe(`batch#${batch.batch_id}`, connectionOf("watcher"));
    await runBatcher(deps);
    const events = deps.notifier.eventsFor("watcher");
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.type === "batch.progress")).toBe(true);
    expect(events.at(-1)).toEqual({ type: "batch.progress", batch_id: batch.batch_id, request_counts: expect.objectContaining({ total: 2, succeeded: 2 }) });
  });
});

describe("processDelivery on a dynamic-batch engine", () => {
  function dynamicDeps() {
    const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
    raw.components["llama-2-7b-ic"].engine = "lmi-dynamic";
    return memoryDeps(buildRouteCatalog(raw));
  }

  it("sends one request per set of sampling parameters, one batch per copy at a time", async () => {
    const deps = dynamicDeps();
    await withSettings(deps, { dispatch: "immediate" });
    await submitMany(deps, 3, { max_tokens: 8 });
    await submitMany(deps, 2, { max_tokens: 16 });
    await runBatcher(deps);
    expect(deps.invoker.calls.map((c) => c.inputs.map((i) => i.max_new_tokens))).toEqual([[8, 8, 8], [16, 16]]);
    expect(deps.invoker.maxInFlight).toBe(3);
  });
});

describe("processDelivery with a component that is warming", () => {
  it("puts jobs back in the queue saying why, without spending their attempts or claiming the rest", async () => {
    const deps = memoryDeps();
    const [first, second] = await submitMany(deps, 2);
    await withSettings(deps, { max_in_flight_per_copy: 1, top_up: false });
    deps.invoker.behaviour = () => new ModelWarmingError("endpoint batchline-h100: component llama-2-7b-ic has no copy ready");
    const window = deps.queue.takeDelivery();
    const report = await processDelivery(deps, window, inAMinute(deps));
    expect(report.retry).toEqual([]);
    expect(deps.invoker.calls).toHaveLength(1);
    expect(deps.queue.requeued.toSorted()).toEqual(window.map((m) => m.messageId).toSorted());
    expect(deps.jobs.jobs.get(first!.job_id)).toMatchObject({ status: "QUEUED", waiting_reason: "warming", attempt: 0 });
    expect(deps.jobs.jobs.get(second!.job_id)).toMatchObject({ status: "QUEUED", waiting_reason: "warming", attempt: 0 });
    expect(deps.queue.visible).toHaveLength(2);
  });
});

describe("processDelivery with a job that ends while its component warms", () => {
  it("acknowledges its message instead of putting it back: there is nothing left to wait for", async () => {
    const deps = memoryDeps();
    const [job] = await submitMany(deps, 1);
    deps.invoker.behaviour = () => {
      void deps.jobs.endUnfinished(job!.job_id, { status: "CANCELLED", error: { code: "cancelled", message: "cancelled by its owner" } }, deps.clock.now());
      return new ModelWarmingError("endpoint batchline-h100: inference component llama-2-7b-ic has no capacity");
    };
    const report = await processDelivery(deps, deps.queue.takeDelivery(), inAMinute(deps));
    expect(report.retry).toEqual([]);
    expect(deps.queue.requeued).toEqual([]);
    expect(deps.queue.visible).toHaveLength(0);
    expect(deps.jobs.jobs.get(job!.job_id)?.status).toBe("CANCELLED");
  });
});

describe("processDelivery on the copies autoscaling runs", () => {
  it("feeds every copy running now, not only the copies routes.yml starts with", async () => {
    const deps = memoryDeps();
    await withSettings(deps, { max_in_flight_per_copy: 1, top_up: false });
    await submitMany(deps, 4);
    deps.fleet.counts.set("llama-2-7b-ic", { current: 2, desired: 2 });
    await runBatcher(deps);
    expect(deps.invoker.maxInFlight).toBe(2);
    expect(deps.fleet.reads).toBeGreaterThan(0);
  });

  it("leaves a component that is starting its first copy alone: its jobs wait in the queue for the recheck period", async () => {
    const deps = memoryDeps();
    await withSettings(deps, { warming_recheck_seconds: 12 });
    const jobs = await submitMany(deps, 3);
    deps.fleet.counts.set("llama-2-7b-ic", { current: 0, desired: 1 });
    const window = deps.queue.takeDelivery();
    const report = await processDelivery(deps, window, inAMinute(deps));
    expect(report.retry).toEqual([]);
    expect(deps.invoker.calls).toHaveLength(0);
    expect(deps.queue.requeueDelays).toEqual([12, 12, 12]);
    for (const job of jobs) expect(deps.jobs.jobs.get(job.job_id)).toMatchObject({ status: "QUEUED", waiting_reason: "warming", attempt: 0 });
  });

  it("sends one job to a component at zero that nobody woke: its refusal is what wakes it", async () => {
    const deps = memoryDeps();
    await withSettings(deps, { warming_recheck_seconds: 5 });
    await submitMany(deps, 3);
    deps.fleet.counts.set("llama-2-7b-ic", { current: 0, desired: 0 });
    deps.invoker.behaviour = () => new ModelWarmingError("endpoint batchline-h100: inference component llama-2-7b-ic has no capacity");
    await processDelivery(deps, deps.queue.takeDelivery(), inAMinute(deps));
    expect(deps.invoker.calls).toHaveLength(1);
    expect(deps.queue.requeueDelays).toEqual([5, 5, 5]);
  });
});

describe("processDelivery when a store fails mid-way", () => {
  it("hands the unsettled delivered messages back for another delivery instead of losing them", async () => {
    const deps = memoryDeps();
    const [job] = await submitMany(deps, 1);
    deps.jobs.finish = async () => {
      throw new RetryableError("throttled", "DynamoDB throttled the write");
    };
    const window = deps.queue.takeDelivery();
    const report = await processDelivery(deps, window, inAMinute(deps));
    expect(report.retry).toEqual([window[0]?.messageId]);
    expect(deps.jobs.jobs.get(job!.job_id)?.status).toBe("RUNNING");
  });
});

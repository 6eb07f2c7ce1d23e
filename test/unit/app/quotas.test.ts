import { describe, expect, it } from "vitest";
import { cancelJob } from "#shared/app/cancel";
import { QuotaReleasingJobStore } from "#shared/app/quotas";
import { submitBatch, submitJob } from "#shared/app/submit";
import { RateLimitedError, RetryableError } from "#shared/core/errors";
import { minuteOf } from "#shared/core/quotas";
import { describeBatch } from "#shared/app/queries";
import type { UsageMeter } from "#shared/ports";
import { runBatcher } from "../../helpers/batcher.ts";
import { memoryDeps, type MemoryQueue } from "../../helpers/fakes.ts";

/** SQS after a batcher died holding its delivery: the messages it did not delete come back once their visibility timeout passes. */
function redeliverInFlight(queue: MemoryQueue): void {
  queue.visible.push(...queue.inFlight.values());
  queue.inFlight.clear();
}

/** A meter whose first give-backs never happen: the batcher was killed between a job's final write and the give-back. */
function killedBeforeGiveBack(usage: UsageMeter, times: number): UsageMeter {
  let kills = times;
  return Object.assign(Object.create(usage) as UsageMeter, {
    giveBackJobs: (...args: Parameters<UsageMeter["giveBackJobs"]>) => (kills-- > 0 ? Promise.reject(new Error("killed")) : usage.giveBackJobs(...args)),
  });
}

/** Deps whose job store gives quota slots back, as shared/aws/deps.ts wires the real one. */
function quotaDeps(maxJobs: number, tokensPerMinute = 1_000_000) {
  const deps = memoryDeps();
  const store = deps.jobs;
  const wired = { ...deps, jobs: new QuotaReleasingJobStore(store, deps.usage), tally: deps.usage };
  deps.tenants.quotas.set("acme", { max_jobs_in_flight: maxJobs, tokens_per_minute: tokensPerMinute });
  return { deps: wired, store };
}

const job = { model: "llama-2-7b", prompt: "hi", max_tokens: 10 };

describe("quotas", () => {
  it("refuses a job past the tenant's jobs in flight with 429-worthy Retry-After, writing nothing", async () => {
    const { deps, store } = quotaDeps(2);
    await submitJob(deps, "acme", job);
    await submitJob(deps, "acme", job);
    const refused = submitJob(deps, "acme", { ...job, idempotency_key: "third" });
    await expect(refused).rejects.toThrow(RateLimitedError);
    await expect(refused).rejects.toMatchObject({ retryAfterSeconds: 5, message: "tenant acme would have more than 2 jobs in flight, its quota; wait for some to finish" });
    expect(store.jobs.size).toBe(2);
    expect(deps.idempotency.keys.size).toBe(0);
    expect(deps.queue.sent).toHaveLength(2);
    await expect(submitJob(deps, "globex", job)).resolves.toMatchObject({ created: true });
  });

  it("gives a slot back when a job ends, whichever way", async () => {
    const { deps } = quotaDeps(1);
    const { job: first } = await submitJob(deps, "acme", job);
    await expect(submitJob(deps, "acme", job)).rejects.toThrow(RateLimitedError);
    await cancelJob(deps, "acme", first.job_id);
    const { job: second } = await submitJob(deps, "acme", job);
    await runBatcher(deps);
    expect(await deps.usage.jobsInFlight("acme")).toBe(0);
    expect((await deps.jobs.get(second.job_id))?.status).toBe("SUCCEEDED");
  });

  it("refuses tokens past the minute's allowance until the next minute", async () => {
    const { deps } = quotaDeps(100, 15);
    await submitJob(deps, "acme", job);
    await expect(submitJob(deps, "acme", job)).rejects.toMatchObject({ code: "rate_limited", retryAfterSeconds: 60 });
    expect(await deps.usage.jobsInFlight("acme")).toBe(1);
    deps.clock.advance(60_000);
    await expect(submitJob(deps, "acme", job)).resolves.toMatchObject({ created: true });
  });

  it("bounds a batch file by jobs in flight only", async () => {
    const { deps, store } = quotaDeps(2, 1);
    const line = (id: string) => JSON.stringify({ custom_id: id, body: job });
    await expect(submitBatch(deps, "acme", [line("a"), line("b"), line("c")].join("\n"))).rejects.toThrow(RateLimitedError);
    expect(store.jobs.size + deps.batches.batches.size).toBe(0);
    await expect(submitBatch(deps, "acme", [line("a"), line("b")].join("\n"))).resolves.toMatchObject({ request_counts: { total: 2 } });
  });

  it("gives back the slot of a job whose batcher was killed between its final write and the give-back, when its message comes back", async () => {
    // Prepare
    const { deps, store } = quotaDeps(1);
    const { job: submitted } = await submitJob(deps, "acme", job);
    const killed = { ...deps, jobs: new QuotaReleasingJobStore(store, killedBeforeGiveBack(deps.usage, 1)) };
    const killedRun = await runBatcher(killed);
    const heldAfterKill = await deps.usage.jobsInFlight("acme");

    // Act
    redeliverInFlight(deps.queue);
    const redelivered = await runBatcher(deps);

    // Assess
    expect((await store.get(submitted.job_id))?.status).toBe("SUCCEEDED");
    expect([killedRun.retry.length, heldAfterKill]).toEqual([1, 1]);
    expect(await deps.usage.jobsInFlight("acme")).toBe(0);
    // Its message goes (the event source mapping deletes what is not retried)
    expect(redelivered.retry).toEqual([]);
  });

  it("counts a batch as its jobs end, from its tally, without reading its jobs, and gives every slot back once", async () => {
    // Prepare
    const { deps, store } = quotaDeps(10);
    const line = (id: string) => JSON.stringify({ custom_id: id, body: job });
    const { batch } = await submitBatch(deps, "acme", [line("a"), "", line("b"), line("c")].join("\n"));
    const [first] = [...store.jobs.values()];
    await cancelJob(deps, "acme", first?.job_id ?? "");

    // Act
    await runBatcher(deps);
    redeliverInFlight(deps.queue);
    await runBatcher(deps);
    let reads = 0;
    const counted = await describeBatch({ ...deps, jobs: Object.assign(Object.create(store) as typeof store, { listByBatch: (...args: Parameters<typeof store.listByBatch>) => (reads++, store.listByBatch(...args)) }) }, "acme", batch.batch_id);

    // Assess
    expect(counted.request_counts).toEqual({ total: 3, queued: 0, running: 0, succeeded: 2, failed: 0, cancelled: 1, expired: 0 });
    expect(reads).toBe(0);
    expect(await deps.usage.jobsInFlight("acme")).toBe(0);
  });

  it("keeps the slot and the tokens of a job whose idempotency key another submission, racing it, won", async () => {
    // Prepare: the second submission reads the key's job before the first has written it
    const { deps } = quotaDeps(5);
    const { job: first } = await submitJob(deps, "acme", { ...job, idempotency_key: "k" });
    const minute = minuteOf(deps.clock.now());
    const charged = await deps.usage.tokensCharged("acme", minute);
    deps.clock.advance(1_000);
    let misses = 1;
    const racingJobs = new Proxy(deps.jobs, {
      get(target, name) {
        if (name === "get" && misses-- > 0) return async () => undefined;
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });

    // Act
    const second = await submitJob({ ...deps, jobs: racingJobs }, "acme", { ...job, idempotency_key: "k" });

    // Assess
    expect(second).toMatchObject({ job: { job_id: first.job_id }, created: false });
    expect(await deps.usage.jobsInFlight("acme")).toBe(1);
    expect(await deps.usage.tokensCharged("acme", minute)).toBe(charged);
  });

  // Found by the chaos run's DynamoDB crash: a batch file's take landed as the store died, its
  // answer lost; nothing gave the 40 slots back, and the file sent again took 40 more.
  it("gives back a take that landed unanswered, and tries a give-back again until the store is back", async () => {
    // Prepare: the take lands and its answer is lost; give-backs fail for 3 s
    const { deps } = quotaDeps(100);
    const usage = deps.usage;
    const downUntilMs = deps.time.nowMs + 3_000;
    const meter = Object.assign(Object.create(usage) as UsageMeter, {
      takeJobs: async (...args: Parameters<UsageMeter["takeJobs"]>) => {
        await usage.takeJobs(...args);
        throw new RetryableError("unavailable", "take job slots: DynamoDB unreachable");
      },
      giveBackJobs: async (...args: Parameters<UsageMeter["giveBackJobs"]>) => {
        if (deps.time.nowMs < downUntilMs) throw new RetryableError("unavailable", "give back job slots: DynamoDB unreachable");
        return usage.giveBackJobs(...args);
      },
    });
    const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ custom_id: `l${i}`, body: job })).join("\n");

    // Act
    await expect(submitBatch({ ...deps, usage: meter }, "acme", lines)).rejects.toThrow("DynamoDB unreachable");
    await expect(submitJob({ ...deps, usage: meter }, "acme", job)).rejects.toThrow("DynamoDB unreachable");

    // Assess
    expect(await usage.jobsInFlight("acme")).toBe(0);
    expect(deps.time.nowMs).toBeGreaterThanOrEqual(downUntilMs);
  });
});

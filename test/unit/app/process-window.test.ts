import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { buildRouteCatalog } from "#shared/core/routes";
import { processWindow } from "#shared/app/process-window";
import { submitBatch, submitJob } from "#shared/app/submit";
import { ModelRejectedError, RetryableError } from "#shared/core/errors";
import { jobTopic } from "#shared/core/events";
import type { JobRecord } from "#shared/core/jobs";
import { connectionOf, memoryDeps } from "../../helpers/fakes.ts";

type Deps = ReturnType<typeof memoryDeps>;

async function submitMany(deps: Deps, count: number, overrides: object = {}): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  for (let i = 0; i < count; i++) {
    jobs.push((await submitJob(deps, "acme", { model: "llama-2-7b", prompt: `prompt ${i}`, max_tokens: 8, ...overrides })).job);
  }
  return jobs;
}

/** The window the event source mapping would deliver for what was enqueued. */
function deliveredWindow(deps: Deps) {
  return deps.queue.sent.map((s, i) => ({ messageId: `m${i}`, body: JSON.stringify(s.message) }));
}

describe("processWindow", () => {
  it("runs a window as one GPU batch and records the result, timings and window on every job", async () => {
    const deps = memoryDeps();
    const jobs = await submitMany(deps, 5);
    const { retry } = await processWindow(deps, deliveredWindow(deps));
    expect(retry).toEqual([]);
    expect(deps.invoker.calls).toHaveLength(1);
    expect(deps.invoker.calls[0]?.inputs.map((i) => i.prompt)).toEqual(jobs.map((_, i) => `prompt ${i}`));
    for (const job of jobs) {
      const stored = deps.jobs.jobs.get(job.job_id);
      expect(stored).toMatchObject({ status: "SUCCEEDED", attempt: 1, window_size: 5, component: "llama-2-7b-ic", result: { completion_tokens: 8, prompt_tokens: job.prompt_tokens } });
      expect(stored?.started_at).toBeDefined();
      expect(stored?.finished_at).toBeDefined();
    }
    expect(new Set(jobs.map((j) => deps.jobs.jobs.get(j.job_id)?.window_id)).size).toBe(1);
  });

  it("notifies subscribers of running and succeeded", async () => {
    const deps = memoryDeps();
    const [job] = await submitMany(deps, 1);
    await deps.subscriptions.subscribe(jobTopic(job!.job_id), connectionOf("conn-1"));
    await processWindow(deps, deliveredWindow(deps));
    expect(deps.notifier.eventsFor("conn-1").map((e) => e.type)).toEqual(["job.running", "job.succeeded"]);
  });

  it("fails a prompt the model rejects alone, and retries a throttled one", async () => {
    const deps = memoryDeps();
    const [bad, throttled, good] = await submitMany(deps, 3);
    deps.invoker.behaviour = (input) =>
      input.prompt === "prompt 0" ? new ModelRejectedError("model rejected the request: bad prompt")
      : input.prompt === "prompt 1" ? new RetryableError("throttled", "throttled")
      : { text: "ok", completion_tokens: 1, finish_reason: "stop" };
    const { retry } = await processWindow(deps, deliveredWindow(deps));
    expect(retry).toEqual(["m1"]);
    expect(deps.jobs.jobs.get(bad!.job_id)).toMatchObject({ status: "FAILED", error: { code: "model_error", message: "model rejected the request: bad prompt" } });
    expect(deps.jobs.jobs.get(throttled!.job_id)?.status).toBe("RUNNING");
    expect(deps.jobs.jobs.get(good!.job_id)?.status).toBe("SUCCEEDED");
  });

  it("never runs or writes a finished job twice when its message is delivered again, and re-notifies it", async () => {
    const deps = memoryDeps();
    const [job] = await submitMany(deps, 1);
    const window = deliveredWindow(deps);
    await processWindow(deps, window);
    await deps.subscriptions.subscribe(jobTopic(job!.job_id), connectionOf("late"));
    const { retry } = await processWindow(deps, window);
    expect(retry).toEqual([]);
    expect(deps.invoker.calls).toHaveLength(1);
    expect(deps.jobs.finishes).toHaveLength(1);
    expect(deps.notifier.eventsFor("late").map((e) => e.type)).toEqual(["job.succeeded"]);
  });

  it("fences a batcher that lost its claim: only the latest attempt writes", async () => {
    const deps = memoryDeps();
    const [job] = await submitMany(deps, 1);
    const window = deliveredWindow(deps);
    // A first batcher claims the job and stalls; the message comes back and a second one runs it.
    await deps.jobs.claim(job!.job_id, { window_id: "w-old", window_size: 1, component: "llama-2-7b-ic" }, deps.clock.now());
    await processWindow(deps, window);
    const late = await deps.jobs.finish(job!.job_id, 1, { status: "SUCCEEDED", result: { text: "stale", prompt_tokens: 1, completion_tokens: 1, finish_reason: "stop" } }, deps.clock.now());
    expect(late).toBeUndefined();
    expect(deps.jobs.jobs.get(job!.job_id)).toMatchObject({ status: "SUCCEEDED", attempt: 2 });
    expect(deps.jobs.finishes).toEqual([{ jobId: job!.job_id, attempt: 2, status: "SUCCEEDED" }]);
  });

  it("leaves a message that is not ours for the DLQ", async () => {
    const deps = memoryDeps();
    const { retry } = await processWindow(deps, [{ messageId: "x", body: "{\"hello\":1}" }, { messageId: "y", body: "not json" }]);
    expect(retry).toEqual(["x", "y"]);
  });

  it("splits a window larger than one copy's limits into several GPU batches", async () => {
    const deps = memoryDeps();
    await submitMany(deps, 130);
    await processWindow(deps, deliveredWindow(deps));
    expect(deps.invoker.calls.map((c) => c.inputs.length)).toEqual([128, 2]);
  });

  it("sends a dynamic-batch engine one request per set of sampling parameters", async () => {
    const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
    raw.components["llama-2-7b-ic"].engine = "lmi-dynamic";
    const deps = memoryDeps(buildRouteCatalog(raw));
    await submitMany(deps, 3, { max_tokens: 8 });
    await submitMany(deps, 2, { max_tokens: 16 });
    await processWindow(deps, deliveredWindow(deps));
    expect(deps.invoker.calls.map((c) => c.inputs.map((i) => i.max_new_tokens))).toEqual([[8, 8, 8], [16, 16]]);
  });

  it("reports batch progress to the batch's subscribers", async () => {
    const deps = memoryDeps();
    const line = (id: string) => JSON.stringify({ custom_id: id, body: { model: "llama-2-7b", prompt: id, max_tokens: 2 } });
    const { batch } = await submitBatch(deps, "acme", `${line("a")}\n${line("b")}`);
    await deps.subscriptions.subscribe(`batch#${batch.batch_id}`, connectionOf("watcher"));
    await processWindow(deps, deliveredWindow(deps));
    const events = deps.notifier.eventsFor("watcher");
    expect(events.filter((e) => e.type === "job.succeeded")).toHaveLength(2);
    expect(events.at(-1)).toEqual({ type: "batch.progress", batch_id: batch.batch_id, request_counts: expect.objectContaining({ total: 2, succeeded: 2 }) });
  });
});

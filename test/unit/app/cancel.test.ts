import { describe, expect, it } from "vitest";
import { CANCEL_MARK_TTL_MS, cancelBatch, cancelJob } from "#shared/app/cancel";
import { submitBatch, submitJob } from "#shared/app/submit";
import { connect, handleClientMessage } from "#shared/app/websocket";
import { ConflictError, NotFoundError } from "#shared/core/errors";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { runBatcher } from "../../helpers/batcher.ts";
import { memoryDeps, subscribeToJob } from "../../helpers/fakes.ts";

const job = { model: "llama-2-7b", prompt: "hi", max_tokens: 4 };

describe("cancellation", () => {
  it("cancels a queued job, which then never reaches the GPU, and tells its subscribers", async () => {
    const deps = memoryDeps();
    const { job: submitted } = await submitJob(deps, "acme", job);
    await subscribeToJob(deps, submitted.job_id, "c1");
    const cancelled = await cancelJob(deps, "acme", submitted.job_id);
    expect(cancelled).toMatchObject({ status: "CANCELLED", error: { code: "cancelled", message: "cancelled by request" } });
    const report = await runBatcher(deps);
    expect(report.retry).toEqual([]);
    expect(deps.invoker.calls).toHaveLength(0);
    expect(deps.jobs.jobs.get(submitted.job_id)?.status).toBe("CANCELLED");
    expect(deps.notifier.eventsFor("c1").map((e) => e.type)).toEqual(["job.cancelled", "job.cancelled"]);
  });

  it("cancels a running job, and the result that comes back later is not written", async () => {
    const deps = memoryDeps();
    const { job: submitted } = await submitJob(deps, "acme", job);
    const gate = Promise.withResolvers<void>();
    deps.invoker.gate = deps.time.holdWhile(gate.promise);
    const running = runBatcher(deps);
    await expect.poll(() => deps.invoker.inFlight).toBe(1);
    await cancelJob(deps, "acme", submitted.job_id);
    gate.resolve();
    await running;
    expect(deps.jobs.jobs.get(submitted.job_id)).toMatchObject({ status: "CANCELLED" });
    expect(deps.jobs.jobs.get(submitted.job_id)?.result).toBeUndefined();
    expect(deps.jobs.finishes).toEqual([]);
  });

  it("is a no-op on a cancelled job, a conflict on a finished one, and not found for another tenant", async () => {
    const deps = memoryDeps();
    const { job: first } = await submitJob(deps, "acme", job);
    await cancelJob(deps, "acme", first.job_id);
    await expect(cancelJob(deps, "acme", first.job_id)).resolves.toMatchObject({ status: "CANCELLED" });
    const { job: second } = await submitJob(deps, "acme", job);
    await runBatcher(deps);
    await expect(cancelJob(deps, "acme", second.job_id)).rejects.toThrow(new ConflictError(`job ${second.job_id} already SUCCEEDED; only queued or running jobs can be cancelled`));
    await expect(cancelJob(deps, "globex", second.job_id)).rejects.toThrow(NotFoundError);
  });

  it("cancels the unfinished jobs of a batch and keeps the finished ones", async () => {
    const deps = memoryDeps();
    const line = (id: string) => JSON.stringify({ custom_id: id, body: job });
    const { batch } = await submitBatch(deps, "acme", [line("a"), line("b"), line("c")].join("\n"));
    const route = deps.catalog.routes.get("llama-2-7b");
    if (route) await deps.routeSettings.put("llama-2-7b", { ...defaultRouteSettings(route), top_up: false });
    await runBatcher(deps, 1);
    const view = await cancelBatch(deps, "acme", batch.batch_id);
    expect(view.request_counts).toMatchObject({ total: 3, succeeded: 1, cancelled: 2 });
    expect(view.status).toBe("completed");
  });

  it("expires a job past its deadline instead of running it", async () => {
    const deps = memoryDeps();
    const { job: submitted } = await submitJob(deps, "acme", { ...job, deadline: "2026-11-27T12:00:30Z" });
    deps.clock.advance(60_000);
    await runBatcher(deps);
    expect(deps.invoker.calls).toHaveLength(0);
    expect(deps.jobs.jobs.get(submitted.job_id)).toMatchObject({ status: "EXPIRED", error: { code: "deadline_exceeded" } });
  });

  it("cancels over the WebSocket, by job or by batch, only within the tenant", async () => {
    const deps = memoryDeps();
    deps.apiKeys.add("key-acme", "acme");
    deps.apiKeys.add("key-globex", "globex");
    await connect(deps, "owner", { token: "key-acme" });
    await connect(deps, "intruder", { token: "key-globex" });
    const { job: submitted } = await submitJob(deps, "acme", job);
    await handleClientMessage(deps, "intruder", JSON.stringify({ action: "cancel", job_ids: [submitted.job_id] }));
    expect(deps.notifier.eventsFor("intruder")).toEqual([{ type: "error", error: { code: "not_found", message: `job ${submitted.job_id} not found` } }]);
    expect(deps.jobs.jobs.get(submitted.job_id)?.status).toBe("QUEUED");
    await handleClientMessage(deps, "owner", JSON.stringify({ action: "subscribe", job_ids: [submitted.job_id] }));
    await handleClientMessage(deps, "owner", JSON.stringify({ action: "cancel", job_ids: [submitted.job_id] }));
    expect(deps.notifier.eventsFor("owner").map((e) => e.type)).toEqual(["subscribed", "job.waiting", "job.cancelled"]);
  });
});

describe("cancelling a running job marks it for its batcher", () => {
  const vllmJob = { model: "llama-3-8b", prompt: "hi", max_tokens: 4 };
  const VLLM = "llama-3-8b-ic";

  /** Submits a job and claims it as a batcher would, on the component of its route. */
  async function runningJob(deps: ReturnType<typeof memoryDeps>, request: typeof vllmJob, component: string) {
    const { job: submitted } = await submitJob(deps, "acme", request);
    await deps.jobs.claim(submitted.job_id, { gpu_batch_id: "gpu_x", gpu_batch_size: 1, component }, deps.clock.now());
    return submitted.job_id;
  }

  it("marks a running job on an engine that stops for an aborted call, in its component's partition, for two minutes", async () => {
    // Prepare
    const deps = memoryDeps();
    const jobId = await runningJob(deps, vllmJob, VLLM);

    // Act
    await cancelJob(deps, "acme", jobId);

    // Assess
    expect(deps.ledger.marks).toEqual(new Map([[`${VLLM}|${jobId}`, new Date(deps.clock.now().getTime() + CANCEL_MARK_TTL_MS)]]));
    expect((await deps.ledger.others(VLLM, "a-batcher", deps.clock.now())).cancelled).toEqual([jobId]);
  });

  it("marks nothing for a queued job, nor for a running one whose engine runs a started request to its end", async () => {
    // Prepare
    const deps = memoryDeps();
    const { job: queued } = await submitJob(deps, "acme", vllmJob);
    const lmi = await runningJob(deps, job, "llama-2-7b-ic");

    // Act
    await cancelJob(deps, "acme", queued.job_id);
    await cancelJob(deps, "acme", lmi);

    // Assess
    expect(deps.jobs.jobs.get(lmi)?.status).toBe("CANCELLED");
    expect(deps.ledger.marks.size).toBe(0);
  });

  it("marks a job a batcher claimed between the cancel's read and its write", async () => {
    // Prepare
    const deps = memoryDeps();
    const { job: submitted } = await submitJob(deps, "acme", vllmJob);
    const endUnfinished = deps.jobs.endUnfinished.bind(deps.jobs);
    deps.jobs.endUnfinished = async (...args) => {
      await deps.jobs.claim(submitted.job_id, { gpu_batch_id: "gpu_x", gpu_batch_size: 1, component: VLLM }, deps.clock.now());
      return endUnfinished(...args);
    };

    // Act
    await cancelJob(deps, "acme", submitted.job_id);

    // Assess
    expect([...deps.ledger.marks.keys()]).toEqual([`${VLLM}|${submitted.job_id}`]);
  });

  it("marks only the running jobs of a cancelled batch", async () => {
    // Prepare
    const deps = memoryDeps();
    const line = (id: string) => JSON.stringify({ custom_id: id, body: vllmJob });
    const { batch } = await submitBatch(deps, "acme", [line("a"), line("b"), line("c")].join("\n"));
    const [first, second] = (await deps.jobs.listByBatch(batch.batch_id, { limit: 10 })).items;
    for (const j of [first, second]) await deps.jobs.claim(j?.job_id ?? "", { gpu_batch_id: "gpu_x", gpu_batch_size: 2, component: VLLM }, deps.clock.now());

    // Act
    const view = await cancelBatch(deps, "acme", batch.batch_id);

    // Assess
    expect(view.request_counts).toMatchObject({ total: 3, cancelled: 3 });
    expect([...deps.ledger.marks.keys()].sort()).toEqual([`${VLLM}|${first?.job_id}`, `${VLLM}|${second?.job_id}`].sort());
  });

  it("cancels the job even when the mark cannot be written: its call then runs to its end, its result fenced out", async () => {
    // Prepare
    const deps = memoryDeps();
    const jobId = await runningJob(deps, vllmJob, VLLM);
    deps.ledger.markCancelled = async () => {
      throw new Error("ProvisionedThroughputExceededException");
    };

    // Act
    const cancelled = await cancelJob(deps, "acme", jobId);

    // Assess
    expect(cancelled.status).toBe("CANCELLED");
    expect(deps.jobs.jobs.get(jobId)?.status).toBe("CANCELLED");
  });
});

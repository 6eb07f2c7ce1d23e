import { describe, expect, it } from "vitest";
import { sweepBatches } from "#shared/app/batch-sweep";
import { BATCH_QUEUED_CHECK_SECONDS, submitBatch, submitJob } from "#shared/app/submit";
import { ValidationError, RetryableError } from "#shared/core/errors";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { buildRouteCatalog } from "#shared/core/routes";
import { memoryDeps } from "../../helpers/fakes.ts";

const job = { model: "llama-2-7b", prompt: "Write a haiku.", max_tokens: 32 };

describe("submitJob", () => {
  it("records the job QUEUED with tenant and expiry, and enqueues it on its route", async () => {
    const deps = memoryDeps();
    const { job: record, created } = await submitJob(deps, "acme", job);
    expect(created).toBe(true);
    expect(record).toMatchObject({ status: "QUEUED", tenant: "acme", model: "llama-2-7b", attempt: 0, priority: 5 });
    expect(record.expires_at).toBe(Date.parse("2026-11-27T12:00:00Z") / 1000 + 30 * 86_400);
    expect(deps.jobs.jobs.get(record.job_id)).toEqual(record);
    expect(deps.queue.sent).toEqual([{ route: "llama-2-7b", lane: "interactive", message: expect.objectContaining({ version: 1, job_id: record.job_id, prompt_tokens: record.prompt_tokens }) }]);
  });

  it("sends each job to its lane's queue: the priority it gives against the route's interactive_min_priority (5), else the interactive lane", async () => {
    const deps = memoryDeps();
    const lanes: Record<string, string> = {};
    for (const priority of [undefined, 0, 4, 5, 9]) {
      const { job: record } = await submitJob(deps, "acme", { ...job, ...(priority !== undefined && { priority }) });
      lanes[String(priority)] = deps.queue.sent.find((s) => s.message.job_id === record.job_id)?.lane ?? "none";
    }
    expect(lanes).toEqual({ undefined: "interactive", 0: "batch", 4: "batch", 5: "interactive", 9: "interactive" });
  });

  it("follows the route's own interactive_min_priority", async () => {
    const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
    raw.routes["llama-2-7b"].lanes = { interactive_min_priority: 8 };
    const deps = memoryDeps(buildRouteCatalog(raw));
    await submitJob(deps, "acme", { ...job, priority: 7 });
    await submitJob(deps, "acme", { ...job, priority: 8 });
    expect(deps.queue.sent.map((s) => [s.message.priority, s.lane])).toEqual([[7, "batch"], [8, "interactive"]]);
  });

  it("writes nothing and enqueues nothing for a rejected job", async () => {
    const deps = memoryDeps();
    await expect(submitJob(deps, "acme", { ...job, max_tokens: -1 })).rejects.toThrow(ValidationError);
    expect(deps.jobs.jobs.size).toBe(0);
    expect(deps.queue.sent).toHaveLength(0);
  });

  it("gives back the first job for a repeated idempotency key of the same tenant only", async () => {
    const deps = memoryDeps();
    const first = await submitJob(deps, "acme", { ...job, idempotency_key: "k1" });
    const again = await submitJob(deps, "acme", { ...job, idempotency_key: "k1" });
    const otherTenant = await submitJob(deps, "globex", { ...job, idempotency_key: "k1" });
    expect(again).toEqual({ job: first.job, created: false });
    expect(otherTenant.job.job_id).not.toBe(first.job.job_id);
    // The repeat finds the first job QUEUED and never claimed: its message is sent again (replayed).
    expect(deps.queue.sent.map((s) => s.message.job_id)).toEqual([first.job.job_id, first.job.job_id, otherTenant.job.job_id]);
  });

  it("sends nothing again for a repeated key whose job a batcher has claimed or that has ended", async () => {
    const deps = memoryDeps();
    const first = await submitJob(deps, "acme", { ...job, idempotency_key: "k1" });
    await deps.jobs.claim(first.job.job_id, { gpu_batch_id: "g1", gpu_batch_size: 1, component: "c" }, deps.clock.now());
    await submitJob(deps, "acme", { ...job, idempotency_key: "k1" });
    const failed = await submitJob(deps, "acme", { ...job, idempotency_key: "k2" });
    await deps.jobs.endUnfinished(failed.job.job_id, { status: "FAILED", error: { code: "enqueue_failed", message: "x" } }, deps.clock.now());
    await expect(submitJob(deps, "acme", { ...job, idempotency_key: "k2" })).resolves.toMatchObject({ job: { status: "FAILED" }, created: false });
    expect(deps.queue.sent).toHaveLength(2);
  });

  // Found by the chaos run's DynamoDB crash: the store died under the job's put, which landed
  // unanswered; every try met the outage, the 5xx's retry found the job by its key and answered
  // 200, and the job, never queued, stayed QUEUED for good.
  it("tries the put again while the store is down, taking one that landed unanswered for its own: one job, queued", async () => {
    const deps = memoryDeps();
    const create = deps.jobs.create.bind(deps.jobs);
    const downUntilMs = deps.time.nowMs + 5_000;
    deps.jobs.create = async (jobs) => {
      if (deps.jobs.jobs.size === 0) await create(jobs);
      if (deps.time.nowMs < downUntilMs) throw new RetryableError("unavailable", "DynamoDB unreachable");
      return create(jobs);
    };

    const { job: record, created } = await submitJob(deps, "acme", { ...job, idempotency_key: "k1" });

    expect(created).toBe(true);
    expect([...deps.jobs.jobs.values()]).toMatchObject([{ job_id: record.job_id, status: "QUEUED" }]);
    expect(deps.queue.sent.map((s) => s.message.job_id)).toEqual([record.job_id]);
    expect(await deps.usage.jobsInFlight("acme")).toBe(1);
    expect(deps.time.nowMs).toBeGreaterThanOrEqual(downUntilMs);
  });

  it("when the store stays down past every try, keeps the slot of a job whose put may have landed, and the key's retry queues it", async () => {
    const deps = memoryDeps();
    const create = deps.jobs.create.bind(deps.jobs);
    const endUnfinished = deps.jobs.endUnfinished.bind(deps.jobs);
    let down = true;
    deps.jobs.create = async (jobs) => {
      if (deps.jobs.jobs.size === 0) await create(jobs);
      if (down) throw new RetryableError("unavailable", "DynamoDB unreachable");
      return create(jobs);
    };
    deps.jobs.endUnfinished = async (...args) => {
      if (down) throw new RetryableError("unavailable", "DynamoDB unreachable");
      return endUnfinished(...args);
    };

    await expect(submitJob(deps, "acme", { ...job, idempotency_key: "k1" })).rejects.toThrow(RetryableError);
    const [stored] = deps.jobs.jobs.values();
    expect(stored).toMatchObject({ status: "QUEUED" });
    expect(deps.queue.sent).toHaveLength(0);
    expect(await deps.usage.jobsInFlight("acme")).toBe(1);

    down = false;
    const again = await submitJob(deps, "acme", { ...job, idempotency_key: "k1" });
    expect(again).toMatchObject({ job: { job_id: stored?.job_id, status: "QUEUED" }, created: false });
    expect(deps.queue.sent.map((s) => s.message.job_id)).toEqual([stored?.job_id]);
    expect(await deps.usage.jobsInFlight("acme")).toBe(1);
  });

  it("when the store stays down for the put alone, fails a job whose put landed, and only then gives its slot back", async () => {
    const deps = memoryDeps();
    const create = deps.jobs.create.bind(deps.jobs);
    deps.jobs.create = async (jobs) => {
      if (deps.jobs.jobs.size === 0) await create(jobs);
      throw new RetryableError("unavailable", "DynamoDB unreachable");
    };

    await expect(submitJob(deps, "acme", job)).rejects.toThrow(RetryableError);

    expect([...deps.jobs.jobs.values()]).toMatchObject([{ status: "FAILED", error: { code: "submission_failed" } }]);
    expect(deps.queue.sent).toHaveLength(0);
    expect(await deps.usage.jobsInFlight("acme")).toBe(0);
  });

  it("gives the slot back at once when the store refuses the put for good (not a store outage)", async () => {
    const deps = memoryDeps();
    deps.jobs.create = async () => {
      throw new Error("ValidationException: item too large");
    };
    await expect(submitJob(deps, "acme", job)).rejects.toThrow("item too large");
    expect(deps.time.sleeps).toEqual([]);
    expect(await deps.usage.jobsInFlight("acme")).toBe(0);
  });

  it("finishes a submission that stopped between binding its key and writing its job", async () => {
    const deps = memoryDeps();
    deps.idempotency.keys.set("acme#k2", "job_orphan");
    const { job: record, created } = await submitJob(deps, "acme", { ...job, idempotency_key: "k2" });
    expect(created).toBe(true);
    expect(record.job_id).toBe("job_orphan");
  });

  it("fails the job with a reason when the queue refuses it, so it is never left QUEUED", async () => {
    const deps = memoryDeps();
    deps.queue.failWith = new Error("SQS down");
    await expect(submitJob(deps, "acme", job)).rejects.toThrow(RetryableError);
    const [stored] = deps.jobs.jobs.values();
    expect(stored).toMatchObject({ status: "FAILED", error: { code: "enqueue_failed" } });
  });
});

describe("submitBatch", () => {
  const line = (id: string) => JSON.stringify({ custom_id: id, body: job });

  it("records the batch and one job per line, in line order, and enqueues them", async () => {
    const deps = memoryDeps();
    const { batch, request_counts } = await submitBatch(deps, "acme", [line("a"), line("b"), line("c")].join("\n"));
    expect(request_counts).toEqual({ total: 3, queued: 3, running: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0 });
    expect(deps.batches.batches.get(batch.batch_id)).toMatchObject({ tenant: "acme", total: 3, models: ["llama-2-7b"] });
    const jobs = [...deps.jobs.jobs.values()];
    expect(jobs.map((j) => [j.custom_id, j.batch_line, j.batch_id])).toEqual([["a", 1, batch.batch_id], ["b", 2, batch.batch_id], ["c", 3, batch.batch_id]]);
    expect(deps.queue.sent).toHaveLength(3);
  });

  it("fails the lines it stored when the store dies mid-file, trying again until the store is back: none is left QUEUED without a message", async () => {
    // Prepare: the store takes the first 25 lines, then is down for 3 s (the chaos run's DynamoDB crash).
    const deps = memoryDeps();
    const create = deps.jobs.create.bind(deps.jobs);
    const endUnfinished = deps.jobs.endUnfinished.bind(deps.jobs);
    const downUntilMs = deps.time.nowMs + 3_000;
    const down = () => deps.time.nowMs < downUntilMs;
    deps.jobs.create = async (jobs) => {
      await create(jobs.slice(0, 25));
      throw new RetryableError("unavailable", "DynamoDB unreachable");
    };
    deps.jobs.endUnfinished = async (...args) => {
      if (down()) throw new RetryableError("unavailable", "DynamoDB unreachable");
      return endUnfinished(...args);
    };

    // Act
    const lines = Array.from({ length: 60 }, (_, i) => line(`l${i}`));
    await expect(submitBatch(deps, "acme", lines.join("\n"))).rejects.toThrow("DynamoDB unreachable");

    // Assess
    const stored = [...deps.jobs.jobs.values()];
    expect(stored).toHaveLength(25);
    expect(stored.every((j) => j.status === "FAILED" && j.error?.code === "submission_failed")).toBe(true);
    expect(deps.queue.sent).toHaveLength(0);
    expect(deps.time.nowMs).toBeGreaterThanOrEqual(downUntilMs);
  });

  it("leaves a batch file whose submit stopped between storing its jobs and queueing them to the sweep, which queues them once, after BATCH_QUEUED_CHECK_SECONDS", async () => {
    // Prepare: the submit is killed once its jobs are stored, as it sends their messages
    const deps = memoryDeps();
    const enqueue = deps.queue.enqueue.bind(deps.queue);
    const sending = Promise.withResolvers<void>();
    deps.queue.enqueue = async () => {
      sending.resolve();
      return new Promise<void>(() => {});
    };
    void submitBatch(deps, "acme", [line("a"), line("b"), line("c")].join("\n"));
    await sending.promise;
    deps.queue.enqueue = enqueue;

    // Act
    const early = await sweepBatches(deps);
    deps.time.advance(BATCH_QUEUED_CHECK_SECONDS * 1000);
    const due = await sweepBatches(deps);
    const again = await sweepBatches(deps);

    // Assess: every job queued once; the batch is out of the sweep's index
    expect(early).toMatchObject({ requeued: 0 });
    expect(due).toMatchObject({ requeued: 1 });
    expect(again).toMatchObject({ requeued: 0 });
    const jobs = [...deps.jobs.jobs.values()];
    expect(jobs.map((j) => j.status)).toEqual(["QUEUED", "QUEUED", "QUEUED"]);
    expect(deps.queue.sent.map((m) => m.message.job_id).toSorted()).toEqual(jobs.map((j) => j.job_id).toSorted());
    expect(await deps.batches.listDue(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
  });

  it("marks a batch file queued once its messages are sent: the sweep sends none again", async () => {
    const deps = memoryDeps();
    await submitBatch(deps, "acme", [line("a"), line("b")].join("\n"));
    deps.time.advance(BATCH_QUEUED_CHECK_SECONDS * 1000);
    expect(await sweepBatches(deps)).toEqual({ expired: 0, resent: 0, failed: 0, requeued: 0 });
    expect(deps.queue.sent).toHaveLength(2);
  });

  it("sends a line without a priority to the batch lane, and one whose priority reaches interactive_min_priority to the interactive lane", async () => {
    const deps = memoryDeps();
    const withPriority = (id: string, priority: number) => JSON.stringify({ custom_id: id, body: { ...job, priority } });
    await submitBatch(deps, "acme", [line("plain"), withPriority("low", 4), withPriority("high", 5)].join("\n"));
    const laneOf = (customId: string) => {
      const record = [...deps.jobs.jobs.values()].find((j) => j.custom_id === customId);
      return deps.queue.sent.find((s) => s.message.job_id === record?.job_id)?.lane;
    };
    expect([laneOf("plain"), laneOf("low"), laneOf("high")]).toEqual(["batch", "batch", "interactive"]);
  });

  it("writes nothing when any line is bad", async () => {
    const deps = memoryDeps();
    await expect(submitBatch(deps, "acme", `${line("a")}\n{"custom_id":"b","body":{"model":"llama-2-7b","max_tokens":1}}`)).rejects.toThrow(
      "line 2: body.prompt: give exactly one of prompt or messages",
    );
    expect(deps.batches.batches.size + deps.jobs.jobs.size + deps.queue.sent.length).toBe(0);
  });
});

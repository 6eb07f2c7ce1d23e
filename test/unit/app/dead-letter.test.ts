import type { Context, SQSEvent } from "aws-lambda";
import { describe, expect, it, vi } from "vitest";
import { handleDeadLetter } from "#shared/app/dead-letter";
import { submitJob } from "#shared/app/submit";
import { logger } from "#shared/observability";
import { runtimeDeps } from "#shared/runtime";
import { runBatcher } from "../../helpers/batcher.ts";
import { memoryDeps, subscribeToJob } from "../../helpers/fakes.ts";

// The dead-letter function as deployed, on the fakes instead of AWS.
vi.mock("#shared/runtime", async () => {
  const { memoryDeps } = await import("../../helpers/fakes.ts");
  const deps = { ...memoryDeps(), config: { resourcePrefix: "batchline-test" } };
  return { runtimeDeps: () => deps };
});

const job = { model: "llama-2-7b", prompt: "hi", max_tokens: 4 };

describe("handleDeadLetter", () => {
  it("fails the job with the reason and tells its subscribers", async () => {
    const deps = memoryDeps();
    const { job: submitted } = await submitJob(deps, "acme", job);
    await subscribeToJob(deps, submitted.job_id, "c1");
    await handleDeadLetter(deps, JSON.stringify(deps.queue.sent[0]?.message), 5);
    expect(deps.jobs.jobs.get(submitted.job_id)).toMatchObject({
      status: "FAILED",
      error: { code: "retries_exhausted", message: "gave up after 5 delivery attempts; the model endpoint kept failing or timing out" },
    });
    expect(deps.notifier.eventsFor("c1").map((e) => e.type)).toEqual(["job.failed"]);
  });

  it("leaves a finished job as it is and re-notifies its final state", async () => {
    const deps = memoryDeps();
    const { job: submitted } = await submitJob(deps, "acme", job);
    const body = JSON.stringify(deps.queue.sent[0]?.message);
    await runBatcher(deps);
    await subscribeToJob(deps, submitted.job_id, "c1");
    await handleDeadLetter(deps, body, 6);
    expect(deps.jobs.jobs.get(submitted.job_id)?.status).toBe("SUCCEEDED");
    expect(deps.notifier.eventsFor("c1").map((e) => e.type)).toEqual(["job.succeeded"]);
  });

  it("lets a message that is not ours go without throwing", async () => {
    const deps = memoryDeps();
    await expect(handleDeadLetter(deps, "garbage", 5)).resolves.toBeUndefined();
  });
});

describe("the dead-letter function", () => {
  const context = { functionName: "batchline-test-deadLetter", awsRequestId: "req-1", getRemainingTimeInMillis: () => 29_000 } as Context;

  it("reports exactly the record that failed, and handles the others", async () => {
    const { handler } = await import("../../../functions/dead-letter/handler.ts");
    const deps = runtimeDeps() as unknown as ReturnType<typeof memoryDeps>;
    const ids = [];
    for (const prompt of ["one", "two", "three"]) ids.push((await submitJob(deps, "acme", { ...job, prompt })).job.job_id);
    const broken = ids[1];
    const endUnfinished = deps.jobs.endUnfinished.bind(deps.jobs);
    vi.spyOn(deps.jobs, "endUnfinished").mockImplementation(async (jobId, ...rest) => {
      if (jobId === broken) throw new Error("DynamoDB is down");
      return endUnfinished(jobId, ...rest);
    });
    const logged = vi.spyOn(logger, "error").mockImplementation(() => undefined);
    const event = {
      Records: deps.queue.sent.map((sent, i) => ({ messageId: `m${i}`, body: JSON.stringify(sent.message), attributes: { ApproximateReceiveCount: "5" } })),
    } as unknown as SQSEvent;

    const response = await handler(event, context);

    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "m1" }] });
    expect(ids.map((id) => deps.jobs.jobs.get(id)?.status)).toEqual(["FAILED", "QUEUED", "FAILED"]);
    expect(logged).toHaveBeenCalledWith("record failed; SQS delivers it again", expect.objectContaining({ messageId: "m1" }));
  });
});

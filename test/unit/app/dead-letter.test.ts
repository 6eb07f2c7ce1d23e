import { describe, expect, it } from "vitest";
import { handleDeadLetter } from "#shared/app/dead-letter";
import { submitJob } from "#shared/app/submit";
import { jobTopic } from "#shared/core/events";
import { runBatcher } from "../../helpers/batcher.ts";
import { connectionOf, memoryDeps } from "../../helpers/fakes.ts";

const job = { model: "llama-2-7b", prompt: "hi", max_tokens: 4 };

describe("handleDeadLetter", () => {
  it("fails the job with the reason and tells its subscribers", async () => {
    const deps = memoryDeps();
    const { job: submitted } = await submitJob(deps, "acme", job);
    await deps.subscriptions.subscribe(jobTopic(submitted.job_id), connectionOf("c1"));
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
    await deps.subscriptions.subscribe(jobTopic(submitted.job_id), connectionOf("c1"));
    await handleDeadLetter(deps, body, 6);
    expect(deps.jobs.jobs.get(submitted.job_id)?.status).toBe("SUCCEEDED");
    expect(deps.notifier.eventsFor("c1").map((e) => e.type)).toEqual(["job.succeeded"]);
  });

  it("lets a message that is not ours go without throwing", async () => {
    const deps = memoryDeps();
    await expect(handleDeadLetter(deps, "garbage", 5)).resolves.toBeUndefined();
  });
});

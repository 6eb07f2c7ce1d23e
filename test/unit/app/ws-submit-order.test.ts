import { describe, expect, it } from "vitest";
import { notifyJob } from "#shared/app/notify";
import { connect, handleClientMessage } from "#shared/app/websocket";
import type { Connection } from "#shared/ports";
import { memoryDeps, MemorySubscriptions } from "../../helpers/fakes.ts";

// Found by the chaos suite: a subscriber saw a job go RUNNING, then QUEUED. The answer to a
// WebSocket submit (job.queued) was posted after the sender's subscription was stored, so a
// batcher that claimed the job in between had its job.running reach the client first.
describe("a job submitted over the WebSocket", () => {
  it("is answered before any event of the job can reach the sender", async () => {
    const deps = memoryDeps();
    deps.apiKeys.add("key-acme", "acme");
    await connect(deps, "c1", { token: "key-acme" });
    // A batcher claims the job the moment the sender's subscription is stored.
    const subscriptions = new (class extends MemorySubscriptions {
      override async subscribe(topic: string, connection: Connection) {
        await super.subscribe(topic, connection);
        const jobId = topic.slice("job#".length);
        const job = await deps.jobs.claim(jobId, { gpu_batch_id: "w1", gpu_batch_size: 1, component: "llama-2-7b-ic" }, deps.clock.now());
        if (job) await notifyJob({ ...deps, subscriptions: this }, job);
      }
    })();
    await handleClientMessage({ ...deps, subscriptions }, "c1", JSON.stringify({ action: "submit", request_id: "r1", job: { model: "llama-2-7b", prompt: "hi", max_tokens: 4 } }));
    expect(deps.notifier.eventsFor("c1").map((e) => e.type)).toEqual(["job.queued", "job.running"]);
    expect(deps.notifier.eventsFor("c1")[0]).toMatchObject({ request_id: "r1" });
  });
});

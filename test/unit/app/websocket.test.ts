import { describe, expect, it } from "vitest";
import { submitJob } from "#shared/app/submit";
import { issueTicket, TICKET_TTL_MS } from "#shared/app/tenants";
import { connect, disconnect, handleClientMessage } from "#shared/app/websocket";
import { RetryableError, UnauthorizedError } from "#shared/core/errors";
import { jobTopic } from "#shared/core/events";
import { runBatcher } from "../../helpers/batcher.ts";
import { memoryDeps } from "../../helpers/fakes.ts";

function withTenants() {
  const deps = memoryDeps();
  deps.apiKeys.add("key-acme", "acme");
  deps.apiKeys.add("key-globex", "globex");
  return deps;
}

const job = { model: "llama-2-7b", prompt: "hi", max_tokens: 4 };

describe("WebSocket use cases", () => {
  it("connects with a valid key and refuses a missing or wrong one", async () => {
    const deps = withTenants();
    await expect(connect(deps, "c1", { token: "key-acme" })).resolves.toMatchObject({ connection_id: "c1", tenant: "acme" });
    await expect(connect(deps, "c2", {})).rejects.toThrow(UnauthorizedError);
    await expect(connect(deps, "c3", { token: "nope" })).rejects.toThrow("invalid API key");
    expect([...deps.connections.connections.keys()]).toEqual(["c1"]);
  });

  it("connects once with a ticket, which then no longer works, and refuses an expired one", async () => {
    const deps = withTenants();
    const { ticket } = await issueTicket(deps, { tenant: "acme", role: "member" });
    await expect(connect(deps, "c1", { ticket })).resolves.toMatchObject({ tenant: "acme" });
    await expect(connect(deps, "c2", { ticket })).rejects.toThrow(/invalid, used or expired WebSocket ticket/);
    const { ticket: late } = await issueTicket(deps, { tenant: "acme", role: "member" });
    deps.clock.advance(TICKET_TTL_MS + 1);
    await expect(connect(deps, "c3", { ticket: late })).rejects.toThrow(UnauthorizedError);
    expect([...deps.connections.connections.keys()]).toEqual(["c1"]);
  });

  it("answers a submit with job.queued carrying the request id, and subscribes the sender", async () => {
    const deps = withTenants();
    await connect(deps, "c1", { token: "key-acme" });
    await handleClientMessage(deps, "c1", JSON.stringify({ action: "submit", job, request_id: "r1" }));
    const [queued] = deps.notifier.eventsFor("c1");
    expect(queued).toMatchObject({ type: "job.queued", request_id: "r1", job: { status: "QUEUED", model: "llama-2-7b" } });
    const jobId = queued?.type === "job.queued" ? queued.job.job_id : "";
    expect(await deps.subscriptions.subscribers(jobTopic(jobId))).toEqual(["c1"]);
  });

  // Found by the chaos run's DynamoDB crash: a submit answered job.queued, its subscribe met the
  // outage, and the sender, never subscribed and never told, missed the job's final event.
  it("subscribes a submitter whose subscribe meets a store outage, once the store is back", async () => {
    const deps = withTenants();
    await connect(deps, "c1", { token: "key-acme" });
    const subscribe = deps.subscriptions.subscribe.bind(deps.subscriptions);
    const downUntilMs = deps.time.nowMs + 3_000;
    deps.subscriptions.subscribe = async (...args) => {
      if (deps.time.nowMs < downUntilMs) throw new RetryableError("unavailable", "subscribe: DynamoDB unreachable");
      return subscribe(...args);
    };

    await handleClientMessage(deps, "c1", JSON.stringify({ action: "submit", job, request_id: "r1" }));

    const events = deps.notifier.eventsFor("c1");
    expect(events.map((e) => e.type)).toEqual(["job.queued"]);
    const jobId = events[0]?.type === "job.queued" ? events[0].job.job_id : "";
    expect(await deps.subscriptions.subscribers(jobTopic(jobId))).toEqual(["c1"]);
    await runBatcher(deps);
    expect(deps.notifier.eventsFor("c1").map((e) => e.type).filter((t) => t !== "job.waiting")).toEqual(["job.queued", "job.running", "job.succeeded"]);
  });

  it("tells a submitter whose subscribe still fails, after its job.queued and with its request id, to subscribe; the subscribe gets the final state", async () => {
    const deps = withTenants();
    await connect(deps, "c1", { token: "key-acme" });
    const subscribe = deps.subscriptions.subscribe.bind(deps.subscriptions);
    let down = true;
    deps.subscriptions.subscribe = async (...args) => {
      if (down) throw new RetryableError("unavailable", "subscribe: DynamoDB unreachable");
      return subscribe(...args);
    };

    await handleClientMessage(deps, "c1", JSON.stringify({ action: "submit", job, request_id: "r1" }));

    const [queued, error] = deps.notifier.eventsFor("c1");
    const jobId = queued?.type === "job.queued" ? queued.job.job_id : "";
    expect(queued).toMatchObject({ type: "job.queued", request_id: "r1" });
    expect(error).toEqual({ type: "error", error: { code: "unavailable", message: expect.stringContaining(`job ${jobId} was accepted, but subscribing to it failed`) }, request_id: "r1" });
    down = false;
    await runBatcher(deps);
    await handleClientMessage(deps, "c1", JSON.stringify({ action: "subscribe", job_ids: [jobId] }));
    expect(deps.notifier.eventsFor("c1").slice(2).map((e) => e.type).filter((t) => t !== "job.waiting")).toEqual(["subscribed", "job.succeeded"]);
  });

  it("sends the final event at once when subscribing to a finished job", async () => {
    const deps = withTenants();
    await connect(deps, "c1", { token: "key-acme" });
    const { job: submitted } = await submitJob(deps, "acme", job);
    await runBatcher(deps);
    await handleClientMessage(deps, "c1", JSON.stringify({ action: "subscribe", job_ids: [submitted.job_id] }));
    expect(deps.notifier.eventsFor("c1").map((e) => e.type)).toEqual(["subscribed", "job.succeeded"]);
  });

  // Found by the chaos suite: a read that failed after "subscribed" left the frame's other finished
  // jobs untold, and the client, answered already, had nothing to ask again.
  it("reads a frame's jobs before answering, so a failed read is an error to ask again on, not finished jobs left untold", async () => {
    const deps = withTenants();
    await connect(deps, "c1", { token: "key-acme" });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submitJob(deps, "acme", job)).job.job_id);
    await runBatcher(deps);
    // DynamoDB fails the last read of the frame (the count of its subscribe, which answers with the job; past the SDK's own retries), once.
    let reads = 0;
    const jobs = new Proxy(deps.jobs, {
      get(target, property) {
        if (property === "noteSubscribed") {
          return async (jobId: string) => {
            if (++reads === ids.length) throw new RetryableError("unavailable", `count a subscribe of job ${jobId}: InternalServerError`);
            return target.noteSubscribed(jobId);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const frame = JSON.stringify({ action: "subscribe", job_ids: ids, request_id: "r1" });
    await handleClientMessage({ ...deps, jobs }, "c1", frame);
    expect(deps.notifier.eventsFor("c1")).toEqual([{ type: "error", error: { code: "unavailable", message: expect.stringContaining("InternalServerError") }, request_id: "r1" }]);
    deps.notifier.posts.length = 0;
    await handleClientMessage({ ...deps, jobs }, "c1", frame);
    const events = deps.notifier.eventsFor("c1");
    expect(events[0]).toEqual({ type: "subscribed", job_ids: ids });
    expect(events.slice(1).map((e) => (e.type === "job.succeeded" ? e.job.job_id : e.type)).toSorted()).toEqual(ids.toSorted());
  });

  it("treats another tenant's job as not found and subscribes to nothing", async () => {
    const deps = withTenants();
    await connect(deps, "intruder", { token: "key-globex" });
    const { job: submitted } = await submitJob(deps, "acme", job);
    await handleClientMessage(deps, "intruder", JSON.stringify({ action: "subscribe", job_ids: [submitted.job_id] }));
    expect(deps.notifier.eventsFor("intruder")).toEqual([{ type: "error", error: { code: "not_found", message: `job ${submitted.job_id} not found` } }]);
    expect(await deps.subscriptions.subscribers(jobTopic(submitted.job_id))).toEqual([]);
  });

  it.each([
    ["not json", 'message is not valid JSON; send {"action": "subscribe" | "submit" | "cancel", ...}'],
    [JSON.stringify({ action: "dance" }), 'action: must be "subscribe", "submit" or "cancel"'],
    [JSON.stringify({ action: "subscribe" }), "subscribe: give exactly one of job_ids or batch_id"],
    [JSON.stringify({ action: "subscribe", job_ids: [] }), "job_ids: must not be empty"],
    [JSON.stringify({ action: "submit", job: { model: "llama-2-7b", prompt: "x" } }), "max_tokens: is required"],
  ])("answers the bad frame %s with an error event", async (frame, message) => {
    const deps = withTenants();
    await connect(deps, "c1", { token: "key-acme" });
    await handleClientMessage(deps, "c1", frame);
    const events = deps.notifier.eventsFor("c1");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "error", error: { message } });
    expect(deps.jobs.jobs.size).toBe(0);
  });

  it("drops the subscriptions of a disconnected or gone connection", async () => {
    const deps = withTenants();
    await connect(deps, "c1", { token: "key-acme" });
    await connect(deps, "c2", { token: "key-acme" });
    const { job: submitted } = await submitJob(deps, "acme", job);
    await handleClientMessage(deps, "c1", JSON.stringify({ action: "subscribe", job_ids: [submitted.job_id] }));
    await handleClientMessage(deps, "c2", JSON.stringify({ action: "subscribe", job_ids: [submitted.job_id] }));
    await disconnect(deps, "c1");
    deps.notifier.gone.add("c2");
    await runBatcher(deps);
    expect(await deps.subscriptions.subscribers(jobTopic(submitted.job_id))).toEqual([]);
    expect(deps.connections.connections.has("c1")).toBe(false);
  });

  // Found by the chaos suite: answering a client that had just left threw out of the handler.
  it("answers no one, and drops the subscriptions, when the sender is gone before its answer", async () => {
    const deps = withTenants();
    await connect(deps, "c1", { token: "key-acme" });
    const { job: submitted } = await submitJob(deps, "acme", job);
    await handleClientMessage(deps, "c1", JSON.stringify({ action: "subscribe", job_ids: [submitted.job_id] }));
    deps.notifier.gone.add("c1");

    await expect(handleClientMessage(deps, "c1", JSON.stringify({ action: "subscribe", job_ids: [submitted.job_id] }))).resolves.toBeUndefined();

    expect(await deps.subscriptions.subscribers(jobTopic(submitted.job_id))).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { JobSubscriberCache } from "#shared/app/job-subscribers";
import { handleClientMessage } from "#shared/app/websocket";
import { submitJob } from "#shared/app/submit";
import { jobTopic } from "#shared/core/events";
import type { JobRecord } from "#shared/core/jobs";
import { runBatcher } from "../../helpers/batcher.ts";
import { connectionOf, memoryDeps } from "../../helpers/fakes.ts";

type Deps = ReturnType<typeof memoryDeps>;

/** Counts the look-ups of a job topic's subscribers. */
function countedLookUps(deps: Deps): string[] {
  const topics: string[] = [];
  const subscribers = deps.subscriptions.subscribers.bind(deps.subscriptions);
  deps.subscriptions.subscribers = (topic) => {
    topics.push(topic);
    return subscribers(topic);
  };
  return topics;
}

async function submitted(deps: Deps): Promise<JobRecord> {
  return (await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "hello", max_tokens: 4 })).job;
}

/** What a subscribe frame does: its subscription, then its count on the job. */
async function subscribe(deps: Deps, job: JobRecord, connectionId: string): Promise<void> {
  await deps.subscriptions.subscribe(jobTopic(job.job_id), connectionOf(connectionId));
  await deps.jobs.noteSubscribed(job.job_id);
}

describe("a job's subscribers, looked up by its subscribe count", () => {
  it("costs a job nobody subscribed to no look-up of its subscribers", async () => {
    const deps = memoryDeps();
    const job = await submitted(deps);
    const lookUps = countedLookUps(deps);

    await runBatcher(deps);

    expect(deps.jobs.jobs.get(job.job_id)?.status).toBe("SUCCEEDED");
    expect(lookUps).toEqual([]);
  });

  it("looks a subscribed job's subscribers up once for its running and final events", async () => {
    const deps = memoryDeps();
    const job = await submitted(deps);
    await subscribe(deps, job, "watcher");
    const lookUps = countedLookUps(deps);

    await runBatcher(deps);

    expect(deps.notifier.eventsFor("watcher").map((e) => e.type)).toEqual(["job.running", "job.succeeded"]);
    expect(lookUps).toEqual([jobTopic(job.job_id)]);
  });

  it("counts a subscribe frame on the job, so that the batcher's events reach it", async () => {
    const deps = memoryDeps();
    const job = await submitted(deps);
    await deps.connections.put(connectionOf("frame"));

    await handleClientMessage(deps, "frame", JSON.stringify({ action: "subscribe", job_ids: [job.job_id] }));
    await runBatcher(deps);

    expect(deps.jobs.jobs.get(job.job_id)?.subscriptions).toBe(1);
    // A waiting job's subscribe may also be answered with its place in line.
    expect(deps.notifier.eventsFor("frame").map((e) => e.type).filter((t) => t !== "job.waiting")).toEqual(["subscribed", "job.running", "job.succeeded"]);
  });

  it("tells the subscribers of a job stored before the count was kept", async () => {
    const deps = memoryDeps();
    const job = await submitted(deps);
    const { subscriptions: _, ...before } = job;
    deps.jobs.jobs.set(job.job_id, before);
    await deps.subscriptions.subscribe(jobTopic(job.job_id), connectionOf("old-watcher"));

    await runBatcher(deps);

    expect(deps.notifier.eventsFor("old-watcher").map((e) => e.type)).toEqual(["job.running", "job.succeeded"]);
  });
});

describe("JobSubscriberCache", () => {
  it("looks again once a subscribe counted itself after the last look-up, and forgets a job at its final event", async () => {
    // Prepare
    const deps = memoryDeps();
    const job = await submitted(deps);
    await subscribe(deps, job, "first");
    const lookUps = countedLookUps(deps);
    const cache = new JobSubscriberCache();
    const running = { ...job, status: "RUNNING" as const, subscriptions: 1 };

    // Act
    const atClaim = await cache.connectionsOf(deps.subscriptions, running);
    const again = await cache.connectionsOf(deps.subscriptions, running);
    await subscribe(deps, job, "second");
    const finished = { ...running, status: "SUCCEEDED" as const, subscriptions: 2 };
    const atEnd = await cache.connectionsOf(deps.subscriptions, finished);
    cache.posted(finished, []);
    await cache.connectionsOf(deps.subscriptions, finished);

    // Assess
    expect(atClaim).toEqual(["first"]);
    expect(again).toEqual(["first"]);
    expect(atEnd).toEqual(["first", "second"]);
    expect(lookUps).toHaveLength(3);
  });

  it("leaves out connections found gone", async () => {
    const deps = memoryDeps();
    const job = await submitted(deps);
    await subscribe(deps, job, "stays");
    await subscribe(deps, job, "leaves");
    const cache = new JobSubscriberCache();
    const running = { ...job, status: "RUNNING" as const, subscriptions: 2 };

    await cache.connectionsOf(deps.subscriptions, running);
    cache.posted(running, ["leaves"]);

    expect(await cache.connectionsOf(deps.subscriptions, running)).toEqual(["stays"]);
  });
});

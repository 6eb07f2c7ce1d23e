import { describe, expect, it } from "vitest";
import { cancelJob } from "#shared/app/cancel";
import { processDelivery } from "#shared/app/process-delivery";
import { submitBatch, submitJob } from "#shared/app/submit";
import { viewOf } from "#shared/app/waiting";
import { connect, handleClientMessage } from "#shared/app/websocket";
import type { ServerEvent } from "#shared/core/events";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { memoryDeps } from "../../helpers/fakes.ts";

/** Place in line and estimated start of waiting jobs (core/queue-position.ts), on FakeTime. */
type Deps = ReturnType<typeof memoryDeps>;
const ROUTE = "llama-2-7b";
const job = (prompt: string) => ({ model: ROUTE, prompt, max_tokens: 64 });

async function submitMany(deps: Deps, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await submitJob(deps, "acme", job(`p${i}`))).job.job_id);
  return ids;
}

const positionOf = async (deps: Deps, jobId: string) => {
  const stored = deps.jobs.jobs.get(jobId);
  if (!stored) throw new Error(`no job ${jobId}`);
  return (await viewOf(deps, stored)).queue?.position;
};

describe("a waiting job's place in line", () => {
  it("is told at submit and on GET: lone jobs in the interactive lane, a batch file's lines behind them in file order", async () => {
    const deps = memoryDeps();
    const first = await submitJob(deps, "acme", job("a"));
    const second = await submitJob(deps, "acme", job("b"));
    expect(first.queue).toMatchObject({ lane: "interactive", position: 1 });
    expect(second.queue).toMatchObject({ lane: "interactive", position: 2 });
    expect(Date.parse(second.queue?.estimated_finish_at ?? "")).toBeGreaterThan(Date.parse(second.queue?.estimated_start_at ?? ""));

    const lines = ["x", "y", "z"].map((p, i) => JSON.stringify({ custom_id: `c${i}`, body: job(p) })).join("\n");
    const { batch } = await submitBatch(deps, "acme", lines);
    const batchJobs = [...deps.jobs.jobs.values()].filter((j) => j.batch_id === batch.batch_id).sort((a, b) => (a.batch_line ?? 0) - (b.batch_line ?? 0));
    expect(batchJobs.map((j) => [j.lane, j.ticket])).toEqual([["batch", 1], ["batch", 2], ["batch", 3]]);
    // Behind its own lane's two and the two interactive jobs waiting.
    expect(await positionOf(deps, batchJobs[2]?.job_id ?? "")).toBe(3 + 2);
    expect(await positionOf(deps, second.job.job_id)).toBe(2);
  });

  it("moves up as jobs ahead leave the line: cancelled while waiting, or started by a batcher", async () => {
    const deps = memoryDeps();
    const ids = await submitMany(deps, 4);
    await cancelJob(deps, "acme", ids[0] ?? "");
    expect(await positionOf(deps, ids[3] ?? "")).toBe(3);
    await processDelivery(deps, deps.queue.takeDelivery(ROUTE, 2), { topUpUntil: new Date(deps.time.nowMs) });
    // The cancelled job's message was taken too: its claim fails, and it is not counted out twice.
    expect((await deps.queueBoard.read(ROUTE)).departed).toEqual({ interactive: 2, batch: 0 });
    expect(await positionOf(deps, ids[3] ?? "")).toBe(2);
    expect((await viewOf(deps, deps.jobs.jobs.get(ids[1] ?? "") ?? deps.jobs.jobs.values().next().value!)).queue).toBeUndefined();
  });

  it("stops counting a ticket whose job was never queued (its submit killed after the take) once a batcher finds the lane empty", async () => {
    // Prepare: two jobs, a ticket taken by a submit that died, a third job
    const deps = memoryDeps();
    await submitMany(deps, 2);
    await deps.queueBoard.takeTickets(ROUTE, "interactive", 1);
    const [third] = await submitMany(deps, 1);
    const before = await positionOf(deps, third ?? "");

    // Act: a batcher runs the first two and tops up from the lane until it is empty
    await processDelivery(deps, deps.queue.takeDelivery(ROUTE, 2), { topUpUntil: new Date(deps.time.nowMs + 60_000) });
    const [next] = await submitMany(deps, 1);

    // Assess: the dead submit's ticket stood ahead of the third job; the next one is first in line
    expect(before).toBe(4);
    expect([...deps.jobs.jobs.values()].filter((j) => j.status === "SUCCEEDED")).toHaveLength(3);
    expect((await deps.queueBoard.read(ROUTE)).departed.interactive).toBe(4);
    expect(await positionOf(deps, next ?? "")).toBe(1);
  });

  it("is sent to a subscriber as job.waiting while the job moves, at most once a second, and never after its job.running", async () => {
    // Prepare: one sequence at a time on the one copy; each GPU call takes 3 s of virtual time.
    const deps = memoryDeps();
    const route = deps.catalog.routes.get(ROUTE);
    if (!route) throw new Error(`no route ${ROUTE}`);
    await deps.routeSettings.put(ROUTE, { ...defaultRouteSettings(route), max_in_flight_per_copy: 1, top_up: false }, deps.clock.now());
    const invoke = deps.invoker.invoke.bind(deps.invoker);
    deps.invoker.invoke = async (component, inputs, options) => {
      await deps.time.sleep(3_000);
      return invoke(component, inputs, options);
    };
    deps.apiKeys.add("key-acme", "acme");
    await connect(deps, "c1", { token: "key-acme" });
    const ids = await submitMany(deps, 4);
    const last = ids[3] ?? "";
    const told: { atMs: number; event: ServerEvent }[] = [];
    const post = deps.notifier.post.bind(deps.notifier);
    deps.notifier.post = async (connectionId, event) => {
      if (connectionId === "c1") told.push({ atMs: deps.time.nowMs, event });
      return post(connectionId, event);
    };

    // Act
    await handleClientMessage(deps, "c1", JSON.stringify({ action: "subscribe", job_ids: [last] }));
    let jobReads = 0;
    const get = deps.jobs.get.bind(deps.jobs);
    deps.jobs.get = (jobId) => {
      jobReads++;
      return get(jobId);
    };
    await processDelivery(deps, deps.queue.takeDelivery(ROUTE, 4), { topUpUntil: new Date(deps.time.nowMs + 60_000) });

    // Assess
    expect(told.map(({ event }) => event.type)).toEqual(["subscribed", "job.waiting", "job.waiting", "job.waiting", "job.running", "job.succeeded"]);
    const waiting = told.flatMap(({ atMs, event }) => (event.type === "job.waiting" ? [{ atMs, event }] : []));
    // 4 when subscribed; 3 came 0.1 s later, within the second: not sent; then 2, and 1.
    expect(waiting.map(({ event }) => event.queue.position)).toEqual([4, 2, 1]);
    expect(waiting.every(({ event }) => event.job_id === last && event.queue.lane === "interactive")).toBe(true);
    for (let i = 1; i < waiting.length; i++) expect((waiting[i]?.atMs ?? 0) - (waiting[i - 1]?.atMs ?? 0)).toBeGreaterThanOrEqual(1_000);
    // Each belongs to the version the job waits at, below its job.running's, indexed by when it was told: a client orders them.
    expect(waiting.map(({ event }) => ({ version: event.version, index: event.index }))).toEqual(waiting.map(({ atMs }) => ({ version: 1, index: atMs })));
    expect(told.flatMap(({ event }) => (event.type === "job.running" ? [event.job.version] : []))).toEqual([2]);
    // No estimate starts the job before it was sent; each finishes after it starts.
    for (const { atMs, event } of waiting) {
      expect(Date.parse(event.queue.estimated_start_at)).toBeGreaterThanOrEqual(atMs);
      expect(Date.parse(event.queue.estimated_finish_at)).toBeGreaterThan(Date.parse(event.queue.estimated_start_at));
    }
    // The job has started: its watch is gone. No job was read for its events (its watch carries its version).
    expect(await deps.queueBoard.watches(ROUTE)).toEqual([]);
    expect(jobReads).toBe(0);
    // Jobs waited for room while the window ran: the rate it closes into is the copy's.
    const board = await deps.queueBoard.read(ROUTE);
    expect(board.departed.interactive).toBe(4);
    expect(board.window?.backlogged).toBe(true);
    expect(board.service).toMatchObject({ copies: 1, slots: 1 });
  });
});

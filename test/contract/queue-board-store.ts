import { expect, it } from "vitest";
import { emptyBoard } from "#shared/core/queue-position";
import type { QueueBoardStore } from "#shared/ports";

const now = new Date("2026-12-07T12:00:00.000Z");
const later = (ms: number) => new Date(now.getTime() + ms);

/** What every QueueBoardStore must do, in memory and on DynamoDB alike. */
export function queueBoardStoreContract(makeStore: () => Promise<QueueBoardStore>): void {
  it("reads an empty board for a route nobody submitted to", async () => {
    const store = await makeStore();
    expect(await store.read("llama")).toEqual(emptyBoard);
  });

  it("hands out tickets per lane and route, each take answering with the board after it", async () => {
    const store = await makeStore();
    expect((await store.takeTickets("llama", "interactive", 1)).submitted).toEqual({ interactive: 1, batch: 0 });
    expect((await store.takeTickets("llama", "batch", 2000)).submitted).toEqual({ interactive: 1, batch: 2000 });
    expect((await store.takeTickets("llama", "interactive", 1)).submitted).toEqual({ interactive: 2, batch: 2000 });
    expect((await store.read("mistral")).submitted).toEqual({ interactive: 0, batch: 0 });
  });

  it("settles a lane found empty: its departures become its tickets, only while no ticket was taken since, and once", async () => {
    // Prepare: 5 batch tickets, 2 departed; 3 interactive tickets, none departed (its counter absent)
    const store = await makeStore();
    await store.takeTickets("llama", "batch", 5);
    await store.takeTickets("llama", "interactive", 3);
    await store.depart("llama", { interactive: 0, batch: 2 }, { backlogged: false });

    // Act
    const stale = await store.settleLane("llama", "batch", 4);
    const settled = [await store.settleLane("llama", "batch", 5), await store.settleLane("llama", "interactive", 3)];
    const again = await store.settleLane("llama", "batch", 5);

    // Assess
    expect({ stale, settled, again }).toEqual({ stale: false, settled: [true, true], again: false });
    expect((await store.read("llama")).departed).toEqual({ interactive: 3, batch: 5 });
    expect((await store.read("llama")).submitted).toEqual({ interactive: 3, batch: 5 });
  });

  it("counts departures, keeps the last service report, and marks the rate window backlogged", async () => {
    const store = await makeStore();
    await store.takeTickets("llama", "batch", 10);
    await store.closeRateWindow("llama", undefined, undefined, { startedMs: 1_000, departedAtStart: 0, backlogged: false });
    const service = { atMs: 5_000, copies: 2, slots: 128, held: 100, tokens: 224_000, heldTokens: 102_400 };
    const after = await store.depart("llama", { interactive: 1, batch: 3 }, { service, backlogged: true });
    expect(after.departed).toEqual({ interactive: 1, batch: 3 });
    expect(after.service).toEqual(service);
    expect(after.window).toEqual({ startedMs: 1_000, departedAtStart: 0, backlogged: true });
    const again = await store.depart("llama", { interactive: 0, batch: 2 }, { backlogged: false });
    expect(again.departed).toEqual({ interactive: 1, batch: 5 });
    expect(again.service).toEqual(service);
    expect(again.submitted.batch).toBe(10);
  });

  it("keeps the profile correction a service report carries, and drops it with a report that carries none", async () => {
    // Prepare
    const store = await makeStore();
    const service = { atMs: 5_000, copies: 2, slots: 128, held: 100, tokens: 224_000, heldTokens: 102_400 };
    const corrected = { ...service, profileFactors: { decode: 1.42, prefill: 1 } };

    // Act
    const withFactors = await store.depart("llama", { interactive: 0, batch: 1 }, { service: corrected, backlogged: false });
    const read = await store.read("llama");
    const without = await store.depart("llama", { interactive: 0, batch: 1 }, { service: { ...service, atMs: 6_000 }, backlogged: false });

    // Assess
    expect(withFactors.service).toEqual(corrected);
    expect(read.service).toEqual(corrected);
    expect(without.service).toEqual({ ...service, atMs: 6_000 });
    expect((await store.read("llama")).service?.profileFactors).toBeUndefined();
  });

  it("closes a rate window once: a second closer of the same window changes nothing", async () => {
    const store = await makeStore();
    const first = { startedMs: 1_000, departedAtStart: 0, backlogged: true };
    await store.closeRateWindow("llama", undefined, undefined, first);
    const rate = { perSecond: 4.5, backlogged: true, atMs: 11_000 };
    await store.closeRateWindow("llama", first, rate, { startedMs: 11_000, departedAtStart: 45, backlogged: false });
    await store.closeRateWindow("llama", first, { perSecond: 99, backlogged: false, atMs: 11_001 }, { startedMs: 11_001, departedAtStart: 46, backlogged: false });
    const board = await store.read("llama");
    expect(board.rate).toEqual(rate);
    expect(board.window).toEqual({ startedMs: 11_000, departedAtStart: 45, backlogged: false });
  });

  it("keeps the tickets a rate window opened with and the arrival rate it closed with", async () => {
    const store = await makeStore();
    const first = { startedMs: 1_000, departedAtStart: 0, backlogged: false, submittedAtStart: 12 };
    await store.closeRateWindow("llama", undefined, undefined, first);
    expect((await store.read("llama")).window).toEqual(first);
    const rate = { perSecond: 4.5, backlogged: false, atMs: 11_000, arrivalsPerSecond: 5.25 };
    await store.closeRateWindow("llama", first, rate, { startedMs: 11_000, departedAtStart: 45, backlogged: false, submittedAtStart: 64 });
    expect((await store.read("llama")).rate).toEqual(rate);
    // A window opened without its tickets closes into a rate without arrivals: none is left from before.
    const second = { startedMs: 11_000, departedAtStart: 45, backlogged: false, submittedAtStart: 64 };
    await store.closeRateWindow("llama", second, { perSecond: 3, backlogged: true, atMs: 21_000 }, { startedMs: 21_000, departedAtStart: 75, backlogged: false });
    const board = await store.read("llama");
    expect(board.rate).toEqual({ perSecond: 3, backlogged: true, atMs: 21_000 });
    expect(board.window).toEqual({ startedMs: 21_000, departedAtStart: 75, backlogged: false });
  });

  it("keeps the last latency factor a report carried, and leaves it when a report carries none", async () => {
    const store = await makeStore();
    expect((await store.read("llama")).latency).toBeUndefined();
    const latency = { factor: 1.18, atMs: 5_000 };
    expect((await store.depart("llama", { interactive: 0, batch: 4 }, { backlogged: false, latency })).latency).toEqual(latency);
    expect((await store.depart("llama", { interactive: 0, batch: 1 }, { backlogged: false })).latency).toEqual(latency);
    const newer = { factor: 0.93, atMs: 9_000 };
    await store.depart("llama", { interactive: 1, batch: 0 }, { backlogged: true, latency: newer });
    expect((await store.read("llama")).latency).toEqual(newer);
    expect((await store.read("mistral")).latency).toBeUndefined();
  });

  it("keeps a job's watchers, one entry per job, with the version it waits at, and flags the board until a given time", async () => {
    const store = await makeStore();
    await store.watch("llama", { jobId: "job_1", lane: "batch", ticket: 7, promptTokens: 512, maxTokens: 256, version: 3 }, "conn-a", later(60_000));
    await store.watch("llama", { jobId: "job_1", lane: "batch", ticket: 7, promptTokens: 512, maxTokens: 256, version: 3 }, "conn-b", later(90_000));
    await store.watch("llama", { jobId: "job_2", lane: "interactive", ticket: 1, promptTokens: 20, maxTokens: 30 }, "conn-a", later(120_000));
    const watches = await store.watches("llama");
    expect(watches.map((w) => ({ ...w, connections: [...w.connections].sort() })).sort((a, b) => a.jobId.localeCompare(b.jobId))).toEqual([
      { jobId: "job_1", lane: "batch", ticket: 7, promptTokens: 512, maxTokens: 256, version: 3, connections: ["conn-a", "conn-b"], lastSent: undefined },
      { jobId: "job_2", lane: "interactive", ticket: 1, promptTokens: 20, maxTokens: 30, connections: ["conn-a"], lastSent: undefined },
    ]);
    expect((await store.read("llama")).watchedUntilMs).toBeUndefined();
    await store.flagWatched("llama", later(120_000));
    expect((await store.read("llama")).watchedUntilMs).toBe(later(120_000).getTime());
    expect(await store.watches("mistral")).toEqual([]);
  });

  it("moves a watch on to a job's later version, never back, and watches nothing for a job nobody watches", async () => {
    const store = await makeStore();
    await store.watch("llama", { jobId: "job_1", lane: "batch", ticket: 7, promptTokens: 512, maxTokens: 256, version: 3 }, "conn-a", later(60_000));
    await store.rewatchAt("llama", "job_1", 5);
    await store.rewatchAt("llama", "job_1", 4);
    await store.rewatchAt("llama", "job_9", 2);
    expect((await store.watches("llama")).map((w) => [w.jobId, w.version])).toEqual([["job_1", 5]]);
  });

  it("notes what watchers were told at most once per gap, and never for a job nobody watches", async () => {
    const store = await makeStore();
    await store.watch("llama", { jobId: "job_1", lane: "batch", ticket: 7, promptTokens: 512, maxTokens: 256 }, "conn-a", later(60_000));
    expect(await store.noteSent("llama", "job_1", { position: 7, startMs: 50_000 }, now, 1_000)).toBe(true);
    expect(await store.noteSent("llama", "job_1", { position: 6, startMs: 48_000 }, later(500), 1_000)).toBe(false);
    expect(await store.noteSent("llama", "job_1", { position: 5, startMs: 46_000 }, later(1_000), 1_000)).toBe(true);
    expect((await store.watches("llama"))[0]?.lastSent).toEqual({ position: 5, startMs: 46_000 });
    expect(await store.noteSent("llama", "job_9", { position: 1, startMs: 0 }, now, 1_000)).toBe(false);
  });

  it("counts the estimate a watch was made with as told: the next one waits out the gap", async () => {
    const store = await makeStore();
    const told = { sent: { position: 9, startMs: 70_000 }, at: now };
    await store.watch("llama", { jobId: "job_1", lane: "batch", ticket: 9, promptTokens: 512, maxTokens: 256 }, "conn-a", later(60_000), told);
    expect((await store.watches("llama"))[0]?.lastSent).toEqual(told.sent);
    expect(await store.noteSent("llama", "job_1", { position: 8, startMs: 60_000 }, later(999), 1_000)).toBe(false);
    expect(await store.noteSent("llama", "job_1", { position: 8, startMs: 60_000 }, later(1_000), 1_000)).toBe(true);
  });

  it("forgets the watches of jobs that left the line", async () => {
    const store = await makeStore();
    await store.watch("llama", { jobId: "job_1", lane: "batch", ticket: 7, promptTokens: 512, maxTokens: 256 }, "conn-a", later(60_000));
    await store.watch("llama", { jobId: "job_2", lane: "batch", ticket: 8, promptTokens: 512, maxTokens: 256 }, "conn-a", later(60_000));
    await store.unwatch("llama", ["job_1", "job_3"]);
    expect((await store.watches("llama")).map((w) => w.jobId)).toEqual(["job_2"]);
  });
}

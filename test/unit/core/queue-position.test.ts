import { describe, expect, it } from "vitest";
import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import { RATE_WINDOW_MS, REPORT_FRESH_MS, changedMaterially, closeRateWindow, estimateQueue, positionOf, type EstimateInput, type QueueBoard } from "#shared/core/queue-position";
import type { Component } from "#shared/core/routes";
import { defaultCatalog } from "../../helpers/fakes.ts";

const NOW = Date.parse("2026-12-07T12:00:00.000Z");
const route = defaultCatalog().routes.get("llama-2-7b");
if (!route) throw new Error("routes.yml has no llama-2-7b");
const rolling = route.components[0] as Component;
const profile = rolling.latency;

const board = (patch: Partial<QueueBoard> = {}): QueueBoard => ({
  submitted: { interactive: 5, batch: 100 },
  departed: { interactive: 3, batch: 40 },
  ...patch,
});

function input(patch: Partial<EstimateInput> = {}): EstimateInput {
  return {
    nowMs: NOW,
    board: board(),
    ticket: { lane: "batch", ticket: 70 },
    job: { promptTokens: 512, maxTokens: 512 },
    components: [rolling],
    maxInFlightPerCopy: 128,
    ...patch,
  };
}

const full = { atMs: NOW - 1_000, copies: 1, slots: 128, held: 128 };
const measured = { perSecond: 4, backlogged: true, atMs: NOW - 2_000 };
const startIn = (estimate: { estimated_start_at: string }) => Date.parse(estimate.estimated_start_at) - NOW;

describe("positionOf", () => {
  it("counts the jobs ahead in the lane and every job waiting in a higher lane", () => {
    expect(positionOf(board(), { lane: "batch", ticket: 70 })).toBe(30 + 2);
    expect(positionOf(board(), { lane: "interactive", ticket: 5 })).toBe(2);
  });

  it("is 1 at least, for a ticket the departures have passed (SQS is not strictly first in, first out)", () => {
    expect(positionOf(board(), { lane: "interactive", ticket: 2 })).toBe(1);
    expect(positionOf(board({ departed: { interactive: 9, batch: 40 } }), { lane: "batch", ticket: 41 })).toBe(1);
  });
});

describe("estimateQueue", () => {
  it("starts a job at once when the jobs ahead fit in the copies' free room", () => {
    const estimate = estimateQueue(input({ board: board({ service: { ...full, held: 90 }, rate: measured }) }));
    expect(estimate).toMatchObject({ lane: "batch", position: 32 });
    expect(startIn(estimate)).toBe(0);
  });

  it("waits for the jobs ahead past the free room at the start rate measured while jobs waited", () => {
    expect(startIn(estimateQueue(input({ board: board({ service: full, rate: measured }) })))).toBe(8_000);
    expect(startIn(estimateQueue(input({ board: board({ service: { ...full, held: 100 }, rate: measured }) })))).toBe(1_000);
  });

  it("uses the latency model's rate for full copies when no rate was measured under a backlog", () => {
    // A copy takes 109 such jobs at once: its KV budget binds before its 128 sequences.
    const jobOnFullCopy = prefillMs(profile, 512) + 511 * decodeStepMs(profile, 109, 109 * (512 + 256));
    const expected = Math.round((32 * jobOnFullCopy) / 128);
    expect(startIn(estimateQueue(input({ board: board({ service: full }) })))).toBe(expected);
    // A rate measured while the queue was often empty is the arrivals', not the copies'.
    expect(startIn(estimateQueue(input({ board: board({ service: full, rate: { ...measured, backlogged: false } }) })))).toBe(expected);
    expect(startIn(estimateQueue(input({ board: board({ service: full, rate: { ...measured, atMs: NOW - REPORT_FRESH_MS - 1 } }) })))).toBe(expected);
  });

  it("counts the room a job of this size has, by sequences and by KV tokens, whichever binds", () => {
    // 109 jobs of 512 + 512 fill the copy's KV budget with 19 sequences to spare.
    const kvFull = { ...full, held: 109, tokens: rolling.limits.token_budget, heldTokens: 109 * 1024 };
    expect(Math.floor(rolling.limits.token_budget / 1024)).toBe(109);
    const estimate = estimateQueue(input({ board: board({ service: kvFull, rate: measured }), ticket: { lane: "batch", ticket: 50 } }));
    expect(estimate.position).toBe(12);
    expect(startIn(estimate)).toBe(3_000);
    // Short jobs still fit beside them.
    const short = estimateQueue(input({ board: board({ service: { ...kvFull, heldTokens: 109 * 600 }, rate: measured }), ticket: { lane: "batch", ticket: 50 }, job: { promptTokens: 100, maxTokens: 100 } }));
    expect(startIn(short)).toBe(0);
  });

  it("takes a route with no fresh report as idle, with the copies routes.yml gives", () => {
    const stale = board({ service: { ...full, atMs: NOW - REPORT_FRESH_MS - 1 }, rate: measured });
    expect(startIn(estimateQueue(input({ board: stale })))).toBe(0);
    expect(startIn(estimateQueue(input({ board: board({ submitted: { interactive: 0, batch: 400 } }), ticket: { lane: "batch", ticket: 300 } })))).toBeGreaterThan(0);
  });

  it("finishes after the job's own time on a copy as full as the line ahead makes it", () => {
    const alone = estimateQueue(input({ board: board({ submitted: { interactive: 3, batch: 41 } }), ticket: { lane: "batch", ticket: 41 } }));
    expect(Date.parse(alone.estimated_finish_at) - Date.parse(alone.estimated_start_at)).toBe(Math.round(prefillMs(profile, 512) + 511 * decodeStepMs(profile, 1, 768)));
    const behindMany = estimateQueue(input({ board: board({ service: full, rate: measured }) }));
    expect(Date.parse(behindMany.estimated_finish_at) - Date.parse(behindMany.estimated_start_at)).toBe(Math.round(prefillMs(profile, 512) + 511 * decodeStepMs(profile, 109, 109 * 768)));
  });

  it("estimates a static-batch engine by the batch it would run in", () => {
    const dynamic: Component = { ...rolling, engine: "lmi-dynamic" };
    const estimate = estimateQueue(input({ components: [dynamic], board: board({ service: full }) }));
    expect(startIn(estimate)).toBeGreaterThan(0);
    expect(Date.parse(estimate.estimated_finish_at)).toBeGreaterThan(Date.parse(estimate.estimated_start_at));
  });
});

describe("changedMaterially", () => {
  const last = { position: 100, startMs: NOW + 60_000 };
  it("tells the first estimate, a move of a tenth of the place, or of a fifth of the wait left", () => {
    expect(changedMaterially(undefined, last, NOW)).toBe(true);
    expect(changedMaterially(last, { position: 95, startMs: NOW + 59_000 }, NOW)).toBe(false);
    expect(changedMaterially(last, { position: 90, startMs: NOW + 60_000 }, NOW)).toBe(true);
    expect(changedMaterially(last, { position: 100, startMs: NOW + 71_000 }, NOW)).toBe(false);
    expect(changedMaterially(last, { position: 100, startMs: NOW + 72_000 }, NOW)).toBe(true);
    expect(changedMaterially({ position: 3, startMs: NOW + 1_000 }, { position: 2, startMs: NOW + 1_000 }, NOW)).toBe(true);
    expect(changedMaterially({ position: 1, startMs: NOW + 1_000 }, { position: 1, startMs: NOW + 2_900 }, NOW)).toBe(false);
  });
});

describe("closeRateWindow", () => {
  it("opens the first window, leaves a young one, and closes an old one into a rate", () => {
    expect(closeRateWindow(board(), NOW)).toEqual({ rate: undefined, next: { startedMs: NOW, departedAtStart: 43, backlogged: false, submittedAtStart: 105 } });
    const window = { startedMs: NOW - RATE_WINDOW_MS + 1, departedAtStart: 3, backlogged: true };
    expect(closeRateWindow(board({ window }), NOW)).toBeUndefined();
    const closed = closeRateWindow(board({ window: { ...window, startedMs: NOW - 10_000 } }), NOW);
    // A window opened before tickets were counted in it measures no arrival rate.
    expect(closed).toEqual({ rate: { perSecond: 4, backlogged: true, atMs: NOW }, next: { startedMs: NOW, departedAtStart: 43, backlogged: false, submittedAtStart: 105 } });
  });

  it("measures the route's arrivals over the window from the tickets taken in it, both lanes", () => {
    const window = { startedMs: NOW - 10_000, departedAtStart: 3, backlogged: false, submittedAtStart: 55 };
    expect(closeRateWindow(board({ window }), NOW)?.rate).toEqual({ perSecond: 4, backlogged: false, atMs: NOW, arrivalsPerSecond: 5 });
  });
});

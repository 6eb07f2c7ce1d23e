import { describe, expect, it } from "vitest";
import { REQUEUE_GRACE_MS, YIELD_AFTER_MS, decideNext, type BatcherSnapshot, type WaitingJob } from "#shared/core/batcher-decision";
import { defaultRouteSettings, type RouteSettings } from "#shared/core/route-settings";
import type { Component } from "#shared/core/routes";
import { noLoad, type Load } from "#shared/core/gpu-batch-policy";
import { defaultCatalog } from "../../helpers/fakes.ts";

const NOW = Date.parse("2026-11-27T12:00:00.000Z");
const route = defaultCatalog().routes.get("llama-2-7b");
if (!route) throw new Error("routes.yml has no llama-2-7b");
const rolling = route.components[0] as Component;
const dynamic: Component = { ...rolling, engine: "lmi-dynamic" };

function job(id: string, overrides: Partial<WaitingJob["item"]> = {}, samplingKey = "t0"): WaitingJob {
  return { item: { id, promptTokens: 100, maxNewTokens: 50, payloadBytes: 400, priority: 0, submittedMs: NOW - 1000, ...overrides }, samplingKey, receivedMs: NOW - 500 };
}

type SnapshotPatch = Partial<Omit<BatcherSnapshot, "queue" | "settings">> & {
  queue?: Partial<BatcherSnapshot["queue"]>;
  settings?: Partial<RouteSettings>;
  held?: Load;
  component?: Component;
  warmingUntilMs?: number;
};

function snapshot(patch: SnapshotPatch = {}): BatcherSnapshot {
  const { queue, settings, held = noLoad, component = rolling, warmingUntilMs = 0, ...rest } = patch;
  return {
    nowMs: NOW,
    settings: { ...defaultRouteSettings(route as NonNullable<typeof route>), ...settings },
    components: [{ component, held, warmingUntilMs }],
    waiting: [],
    callsInFlight: 0,
    othersOldestWaitingMs: undefined,
    topUpUntilMs: NOW + 60_000,
    queue: { emptyUntilMs: Number.NEGATIVE_INFINITY, mayHaveMore: true, answeredEmpty: false, ...queue },
    holdUntilMs: undefined,
    arrivalsPerMs: 0,
    ...rest,
  };
}

const full: Load = { sequences: 128, tokens: 1000 };

describe("decideNext", () => {
  it("starts every waiting job a rolling engine has room for, as one GPU batch, most urgent first", () => {
    const step = decideNext(snapshot({ waiting: [job("a"), job("b")] }));
    expect(step).toEqual({
      kind: "start",
      calls: [
        { component: rolling.name, jobIds: ["a"], load: { sequences: 1, tokens: 150 } },
        { component: rolling.name, jobIds: ["b"], load: { sequences: 1, tokens: 150 } },
      ],
    });
  });

  it("starts only what fits beside the load other batchers hold", () => {
    const step = decideNext(snapshot({ waiting: [job("a"), job("b")], held: { sequences: 127, tokens: 1000 }, settings: { top_up: false } }));
    expect(step).toMatchObject({ kind: "start", calls: [{ jobIds: ["a"] }] });
  });

  it("starts a full static batch at once, on a whole copy", () => {
    const waiting = Array.from({ length: 10 }, (_, i) => job(`j${i}`));
    const step = decideNext(snapshot({ component: dynamic, waiting, settings: { max_in_flight_per_copy: 10 } }));
    expect(step).toMatchObject({ kind: "start", calls: [{ component: dynamic.name, jobIds: waiting.map((w) => w.item.id) }] });
  });

  it("puts a static batch of the first sampling parameters together, leaving the others for the next", () => {
    const step = decideNext(snapshot({ component: dynamic, waiting: [job("a"), job("b", {}, "t1"), job("c")], queue: { mayHaveMore: false }, settings: { dispatch: "immediate" } }));
    expect(step).toMatchObject({ kind: "start", calls: [{ jobIds: ["a", "c"] }] });
  });

  it("holds a static batch that arrivals would fill, until the wait stops paying", () => {
    const step = decideNext(snapshot({ component: dynamic, waiting: [job("a")], queue: { mayHaveMore: false }, arrivalsPerMs: 0.05, settings: { max_wait_ms: 2000 } }));
    expect(step.kind).toBe("hold");
    if (step.kind !== "hold") return;
    expect(step.untilMs).toBeGreaterThan(NOW);
    // Never past max_wait_ms since the oldest job was submitted.
    expect(step.untilMs).toBeLessThanOrEqual(NOW - 1000 + 2000);
  });

  it("keeps a hold until it ends, then starts the batch", () => {
    const held = snapshot({ component: dynamic, waiting: [job("a")], queue: { mayHaveMore: false }, arrivalsPerMs: 0.05, holdUntilMs: NOW + 300, settings: { top_up: false } });
    expect(decideNext(held)).toEqual({ kind: "drain" });
    expect(decideNext({ ...held, nowMs: NOW + 300 })).toMatchObject({ kind: "start", calls: [{ jobIds: ["a"] }] });
  });

  it("tops up before sizing a static batch while the queue may hold more", () => {
    expect(decideNext(snapshot({ component: dynamic, waiting: [job("a")] }))).toEqual({ kind: "top-up", max: 10, waitSeconds: 0 });
  });

  it("tops up with a long poll only while nothing waits, and never past its deadline", () => {
    expect(decideNext(snapshot({ callsInFlight: 1 }))).toEqual({ kind: "top-up", max: 10, waitSeconds: 1 });
    expect(decideNext(snapshot({ callsInFlight: 1, topUpUntilMs: NOW + 999 }))).toEqual({ kind: "top-up", max: 10, waitSeconds: 0 });
    expect(decideNext(snapshot({ callsInFlight: 1, topUpUntilMs: NOW }))).toEqual({ kind: "drain" });
  });

  it("asks for no more than the room left after what waits", () => {
    expect(decideNext(snapshot({ callsInFlight: 1, held: { sequences: 125, tokens: 0 } }))).toEqual({ kind: "top-up", max: 3, waitSeconds: 1 });
  });

  it("does not ask the queue again right after it came back empty", () => {
    expect(decideNext(snapshot({ callsInFlight: 1, queue: { answeredEmpty: true } }))).toEqual({ kind: "drain" });
    expect(decideNext(snapshot({ callsInFlight: 1, queue: { emptyUntilMs: NOW + 1 } }))).toEqual({ kind: "drain" });
  });

  it("puts the waiting jobs back to wait in the queue while every component warms, and pulls none", () => {
    expect(decideNext(snapshot({ waiting: [job("a")], warmingUntilMs: NOW + 11_500 }))).toEqual({ kind: "requeue", reason: "warming", delaySeconds: 12 });
    expect(decideNext(snapshot({ callsInFlight: 1, warmingUntilMs: NOW + 11_500 }))).toEqual({ kind: "drain" });
  });

  it("yields to another batcher's job that has waited a second longer: starts nothing, pulls nothing", () => {
    const waiting = [job("a")];
    expect(decideNext(snapshot({ waiting, othersOldestWaitingMs: NOW - 500 - YIELD_AFTER_MS - 1 }))).toEqual({ kind: "yield" });
    expect(decideNext(snapshot({ waiting, othersOldestWaitingMs: NOW - 500 - YIELD_AFTER_MS }))).toMatchObject({ kind: "start" });
  });

  it("requeues what found no room once the top-up deadline and its grace have passed", () => {
    const late = snapshot({ waiting: [job("a")], held: full, topUpUntilMs: NOW - REQUEUE_GRACE_MS, callsInFlight: 1 });
    expect(decideNext(late)).toEqual({ kind: "requeue", reason: "late" });
    expect(decideNext({ ...late, nowMs: NOW - 1 })).toEqual({ kind: "drain" });
  });

  it("waits for room while the copies are full", () => {
    expect(decideNext(snapshot({ waiting: [job("a")], held: full, callsInFlight: 1 }))).toEqual({ kind: "drain" });
  });

  it("is done once nothing waits, nothing runs and the queue has nothing to add", () => {
    expect(decideNext(snapshot({ queue: { answeredEmpty: true } }))).toEqual({ kind: "done" });
    expect(decideNext(snapshot({ settings: { top_up: false } }))).toEqual({ kind: "done" });
  });
});

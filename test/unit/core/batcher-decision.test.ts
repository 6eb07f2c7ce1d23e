import { describe, expect, it } from "vitest";
import { HANDOVER_MARGIN_MS, INTERACTIVE_MEMORY_MS, REQUEUE_GRACE_MS, YIELD_AFTER_MS, batchLaneCapped, decideNext, topUpDeadline, type BatcherSnapshot, type LaneQueueState, type WaitingJob } from "#shared/core/batcher-decision";
import type { Lane } from "#shared/core/lanes";
import { defaultRouteSettings, type RouteSettings } from "#shared/core/route-settings";
import type { Component } from "#shared/core/routes";
import { noLoad, type Load } from "#shared/core/gpu-batch-policy";
import { batchJobsUnderCap, maxSlowdownPercent } from "#shared/core/batch-lane-cap";
import { defaultCatalog } from "../../helpers/fakes.ts";

const NOW = Date.parse("2026-11-27T12:00:00.000Z");
const route = defaultCatalog().routes.get("llama-2-7b");
if (!route) throw new Error("routes.yml has no llama-2-7b");
const rolling = route.components[0] as Component;
const dynamic: Component = { ...rolling, engine: "lmi-dynamic" };

function job(id: string, overrides: Partial<WaitingJob["item"]> = {}, samplingKey = "t0", lane: Lane = "batch"): WaitingJob {
  return { item: { id, promptTokens: 100, maxNewTokens: 50, payloadBytes: 400, priority: 0, submittedMs: NOW - 1000, ...overrides }, samplingKey, receivedMs: NOW - 500, lane };
}

type SnapshotPatch = Partial<Omit<BatcherSnapshot, "queues" | "settings">> & {
  /** Applied to both lanes. */
  queue?: Partial<LaneQueueState>;
  queues?: Partial<Record<Lane, Partial<LaneQueueState>>>;
  settings?: Partial<RouteSettings>;
  held?: Load;
  /** The part of `held` interactive-lane jobs hold. */
  interactiveHeld?: Load;
  component?: Component;
  warmingUntilMs?: number;
};

function snapshot(patch: SnapshotPatch = {}): BatcherSnapshot {
  const { queue, queues, settings, held = noLoad, interactiveHeld = noLoad, component = rolling, warmingUntilMs = 0, ...rest } = patch;
  const lane = (l: Lane): LaneQueueState => ({ emptyUntilMs: Number.NEGATIVE_INFINITY, mayHaveMore: true, answeredEmpty: false, ...queue, ...queues?.[l] });
  return {
    nowMs: NOW,
    settings: { ...defaultRouteSettings(route as NonNullable<typeof route>), ...settings },
    components: [{ component, held, interactiveHeld, warmingUntilMs }],
    waiting: [],
    callsInFlight: 0,
    othersOldestWaitingMs: undefined,
    othersInteractiveWaiting: false,
    topUpUntilMs: NOW + 60_000,
    queues: { interactive: lane("interactive"), batch: lane("batch") },
    receivedByLane: { interactive: 0, batch: 0 },
    longPolledSinceIdle: false,
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
    expect(decideNext(snapshot({ component: dynamic, waiting: [job("a")] }))).toEqual({ kind: "top-up", lane: "interactive", max: 10, waitSeconds: 0 });
  });

  it("looks at each lane, then long-polls the interactive lane once while nothing waits, never past its deadline", () => {
    const interactiveEmpty = { interactive: { answeredEmpty: true } };
    const bothEmpty = { queue: { answeredEmpty: true } };
    expect(decideNext(snapshot({ callsInFlight: 1 }))).toEqual({ kind: "top-up", lane: "interactive", max: 10, waitSeconds: 0 });
    expect(decideNext(snapshot({ callsInFlight: 1, queues: interactiveEmpty }))).toEqual({ kind: "top-up", lane: "batch", max: 10, waitSeconds: 0 });
    expect(decideNext(snapshot({ callsInFlight: 1, ...bothEmpty }))).toEqual({ kind: "top-up", lane: "interactive", max: 10, waitSeconds: 1 });
    expect(decideNext(snapshot({ callsInFlight: 1, ...bothEmpty, longPolledSinceIdle: true }))).toEqual({ kind: "drain" });
    expect(decideNext(snapshot({ callsInFlight: 1, ...bothEmpty, topUpUntilMs: NOW + 999 }))).toEqual({ kind: "drain" });
    // Never with jobs waiting: the poll would keep them from room that frees meanwhile.
    expect(decideNext(snapshot({ waiting: [job("a")], held: full, callsInFlight: 1, ...bothEmpty }))).toEqual({ kind: "drain" });
  });

  it("asks for no more than the room left after what waits", () => {
    expect(decideNext(snapshot({ callsInFlight: 1, held: { sequences: 125, tokens: 0 } }))).toEqual({ kind: "top-up", lane: "interactive", max: 3, waitSeconds: 0 });
  });

  describe("lanes", () => {
    const received = (interactive: number, batch: number) => ({ receivedByLane: { interactive, batch } });

    it("fills free room from the interactive lane first", () => {
      expect(decideNext(snapshot({ callsInFlight: 1, ...received(0, 0) }))).toMatchObject({ kind: "top-up", lane: "interactive" });
      expect(decideNext(snapshot({ callsInFlight: 1, ...received(9, 1) }))).toMatchObject({ kind: "top-up", lane: "interactive" });
    });

    it("takes from the batch lane once the interactive lane came back empty, and from neither once both did", () => {
      expect(decideNext(snapshot({ callsInFlight: 1, queues: { interactive: { answeredEmpty: true } } }))).toMatchObject({ kind: "top-up", lane: "batch" });
      expect(decideNext(snapshot({ callsInFlight: 1, queues: { interactive: { emptyUntilMs: NOW + 1 } } }))).toMatchObject({ kind: "top-up", lane: "batch" });
      expect(decideNext(snapshot({ callsInFlight: 1, queue: { answeredEmpty: true }, longPolledSinceIdle: true }))).toEqual({ kind: "drain" });
    });

    it("gives the batch lane its floor of what the batcher receives while the interactive lane is busy", () => {
      // Default floor 10%: 1 batch message of 10 (9 + 1) meets it, 1 of 11 (10 + 1) does not.
      expect(decideNext(snapshot({ callsInFlight: 1, ...received(10, 0) }))).toMatchObject({ kind: "top-up", lane: "batch" });
      expect(decideNext(snapshot({ callsInFlight: 1, ...received(10, 1) }))).toMatchObject({ kind: "top-up", lane: "batch" });
      expect(decideNext(snapshot({ callsInFlight: 1, ...received(9, 1) }))).toMatchObject({ kind: "top-up", lane: "interactive" });
      expect(decideNext(snapshot({ callsInFlight: 1, ...received(60, 20), settings: { batch_lane_floor_percent: 30 } }))).toMatchObject({ kind: "top-up", lane: "batch" });
      expect(decideNext(snapshot({ callsInFlight: 1, ...received(60, 30), settings: { batch_lane_floor_percent: 30 } }))).toMatchObject({ kind: "top-up", lane: "interactive" });
    });

    it("owes the batch lane nothing while it came back empty: the interactive lane takes the room", () => {
      expect(decideNext(snapshot({ callsInFlight: 1, ...received(50, 0), queues: { batch: { answeredEmpty: true } } }))).toMatchObject({ kind: "top-up", lane: "interactive" });
    });

    it("yields at once, holding only batch work, to another batcher's interactive job", () => {
      const batchWork = [job("a")];
      expect(decideNext(snapshot({ waiting: batchWork, othersOldestWaitingMs: NOW, othersInteractiveWaiting: true }))).toEqual({ kind: "yield" });
      // Nothing waiting here: it pulls nothing into the room the interactive job waits for.
      expect(decideNext(snapshot({ callsInFlight: 1, othersOldestWaitingMs: NOW, othersInteractiveWaiting: true }))).toEqual({ kind: "yield" });
    });

    it("never yields an interactive job to batch work, however long that waited", () => {
      const mine = [job("i", {}, "t0", "interactive")];
      expect(decideNext(snapshot({ waiting: mine, othersOldestWaitingMs: NOW - 60_000, othersInteractiveWaiting: false }))).toMatchObject({ kind: "start" });
    });

    it("never yields an interactive job by age, even beside another batcher's interactive job", () => {
      // The ledger's oldest wait has no lane: it may be a batch job's. Yielding to it here made two
      // interactive holders and the batch holders all yield to one another, and the copy emptied.
      const mine = [job("i", {}, "t0", "interactive")];
      expect(decideNext(snapshot({ waiting: mine, othersOldestWaitingMs: NOW - 60_000, othersInteractiveWaiting: true }))).toMatchObject({ kind: "start" });
    });
  });

  it("does not look at a lane again right after it came back empty, and long-polls at most once between waits", () => {
    expect(decideNext(snapshot({ callsInFlight: 1, queue: { emptyUntilMs: NOW + 1 } }))).toEqual({ kind: "top-up", lane: "interactive", max: 10, waitSeconds: 1 });
    expect(decideNext(snapshot({ callsInFlight: 1, queue: { emptyUntilMs: NOW + 1 }, longPolledSinceIdle: true }))).toEqual({ kind: "drain" });
    expect(decideNext(snapshot({ callsInFlight: 1, queue: { answeredEmpty: true }, longPolledSinceIdle: true }))).toEqual({ kind: "drain" });
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
    expect(decideNext(snapshot({ queue: { answeredEmpty: true }, longPolledSinceIdle: true }))).toEqual({ kind: "done" });
    expect(decideNext(snapshot({ settings: { top_up: false } }))).toEqual({ kind: "done" });
  });
});

describe("the batch lane's cap beside interactive work (interactive_slowdown_percent)", () => {
  // Llama-2-7B on an H100: a step costs 5.95 ms + 0.000174 ms a context token. At 25% the batch
  // may add 1.4875 ms: 8,548 tokens, eight 512 + 512 jobs (8,192), not nine (9,216).
  const at25 = (patch: SnapshotPatch = {}) => snapshot({ ...patch, settings: { interactive_slowdown_percent: 25, ...patch.settings } });
  const big = { promptTokens: 512, maxNewTokens: 512 };
  const batchJobs = (n: number, tokens = 1024): Load => ({ sequences: n, tokens: n * tokens });
  const oneInteractive: Load = { sequences: 1, tokens: 1024 };
  const plus = (a: Load, b: Load): Load => ({ sequences: a.sequences + b.sequences, tokens: a.tokens + b.tokens });
  const started = (step: ReturnType<typeof decideNext>) => (step.kind === "start" ? step.calls.flatMap((c) => c.jobIds) : []);

  it("starts batch-lane jobs only up to the cap while an interactive job runs on the copy", () => {
    const waiting = [job("b1", big), job("b2", big)];
    expect(started(decideNext(at25({ waiting, held: plus(batchJobs(7), oneInteractive), interactiveHeld: oneInteractive })))).toEqual(["b1"]);
    expect(started(decideNext(at25({ waiting, held: plus(batchJobs(8), oneInteractive), interactiveHeld: oneInteractive, callsInFlight: 1, settings: { top_up: false } })))).toEqual([]);
    // A larger allowance lets more in: 50% is 17,097 tokens, sixteen jobs.
    expect(started(decideNext(at25({ waiting, held: plus(batchJobs(14), oneInteractive), interactiveHeld: oneInteractive, settings: { interactive_slowdown_percent: 50 } })))).toEqual(["b1", "b2"]);
    expect(started(decideNext(at25({ waiting, held: plus(batchJobs(15), oneInteractive), interactiveHeld: oneInteractive, settings: { interactive_slowdown_percent: 50 } })))).toEqual(["b1"]);
  });

  it("fills the copy from the batch lane as before when no interactive work is around", () => {
    const waiting = [job("b1", big), job("b2", big)];
    expect(started(decideNext(at25({ waiting, held: batchJobs(100) })))).toEqual(["b1", "b2"]);
    // The interactive load is only a part of what is held: the batch's part is what the cap counts.
    expect(started(decideNext(at25({ waiting, held: plus(batchJobs(7), batchJobs(20)), interactiveHeld: batchJobs(20) })))).toEqual(["b1"]);
  });

  it("never caps interactive-lane jobs, and caps the batch jobs waiting beside them", () => {
    const waiting = [job("i1", big, "t0", "interactive"), job("i2", big, "t0", "interactive"), job("b1", big), job("b2", big)];
    expect(started(decideNext(at25({ waiting, held: batchJobs(7) })))).toEqual(["i1", "i2", "b1"]);
    expect(started(decideNext(at25({ waiting: waiting.slice(0, 2), held: batchJobs(60), interactiveHeld: oneInteractive })))).toEqual(["i1", "i2"]);
  });

  it("takes since its last read of the ledger only its share of the room it saw, split among the batchers waiting for it; the first in line one job past it", () => {
    const waiting = ["b1", "b2", "b3", "b4", "b5"].map((id) => job(id, big));
    type Share = { startedSinceRead?: Load; firstInLine?: boolean; readSinceWaiting?: boolean };
    const withShare = (contenders: number, share: Share = {}, patch: SnapshotPatch = {}): BatcherSnapshot => {
      const { startedSinceRead = noLoad, firstInLine = true, readSinceWaiting = true } = share;
      const s = at25({ waiting, held: plus(startedSinceRead, oneInteractive), interactiveHeld: oneInteractive, ...patch });
      return { ...s, components: s.components.map((c) => ({ ...c, batchRoomShare: { startedSinceRead, contenders, firstInLine, readSinceWaiting } })) };
    };
    // Alone it may fill the cap's eight jobs; four batchers saw the same room: two each, not eight each.
    expect(started(decideNext(withShare(1)))).toEqual(["b1", "b2", "b3", "b4", "b5"]);
    expect(started(decideNext(withShare(2)))).toEqual(["b1", "b2", "b3", "b4"]);
    expect(started(decideNext(withShare(4)))).toEqual(["b1", "b2"]);
    expect(started(decideNext(withShare(4, { firstInLine: false })))).toEqual(["b1", "b2"]);
    // Two started since the read: its share is taken until it reads again.
    expect(started(decideNext(withShare(4, { startedSinceRead: batchJobs(2) }, { callsInFlight: 2, settings: { top_up: false } })))).toEqual([]);
    // Shares each smaller than a job: the first in line takes one, the others none.
    expect(started(decideNext(withShare(100)))).toEqual(["b1"]);
    expect(started(decideNext(withShare(100, { firstInLine: false })))).toEqual([]);
    // Before it has read the ledger since it said it waits, it cannot know who shares the room: no
    // batch-lane job starts, an interactive one does.
    expect(started(decideNext(withShare(1, { readSinceWaiting: false })))).toEqual([]);
    const interactiveToo = withShare(1, { readSinceWaiting: false }, { waiting: [job("i1", big, "t0", "interactive"), ...waiting] });
    expect(started(decideNext(interactiveToo))).toEqual(["i1"]);
  });

  it("caps while another batcher's interactive job waits (this one holding an interactive job too, so it does not yield)", () => {
    const waiting = [job("i1", big, "t0", "interactive"), job("b1", big)];
    const step = decideNext(at25({ waiting, held: batchJobs(8), othersInteractiveWaiting: true, othersOldestWaitingMs: NOW }));
    expect(started(step)).toEqual(["i1"]);
  });

  it("stays capped for INTERACTIVE_MEMORY_MS after it last saw interactive work, then lifts", () => {
    const waiting = [job("b1", big), job("b2", big)];
    const recently = at25({ waiting, held: batchJobs(7), interactiveSeenMs: NOW - INTERACTIVE_MEMORY_MS + 1 });
    expect(batchLaneCapped(recently)).toBe(true);
    expect(started(decideNext(recently))).toEqual(["b1"]);
    const longAgo = { ...recently, interactiveSeenMs: NOW - INTERACTIVE_MEMORY_MS };
    expect(batchLaneCapped(longAgo)).toBe(false);
    expect(started(decideNext(longAgo))).toEqual(["b1", "b2"]);
    expect(batchLaneCapped(at25({ waiting }))).toBe(false);
  });

  it("lets a copy with no batch work take one batch job whatever the cap, so the batch lane never stops", () => {
    const waiting = [job("b1", big), job("b2", big)];
    const tiny = { interactive_slowdown_percent: 1 };
    expect(started(decideNext(at25({ waiting, held: oneInteractive, interactiveHeld: oneInteractive, settings: tiny })))).toEqual(["b1"]);
    expect(started(decideNext(at25({ waiting, held: plus(batchJobs(1), oneInteractive), interactiveHeld: oneInteractive, settings: tiny, callsInFlight: 1, queue: { answeredEmpty: true }, longPolledSinceIdle: true })))).toEqual([]);
  });

  it("counts the cap per copy: two copies hold twice the batch", () => {
    const twoCopies: Component = { ...rolling, copies: 2 };
    const waiting = [job("b1", big), job("b2", big)];
    expect(started(decideNext(at25({ component: twoCopies, waiting, held: plus(batchJobs(15), oneInteractive), interactiveHeld: oneInteractive })))).toEqual(["b1"]);
    expect(batchJobsUnderCap(twoCopies, { sequences: 1, tokens: 1024 }, 25)).toBe(16);
    expect(batchJobsUnderCap(rolling, { sequences: 1, tokens: 1024 }, 25)).toBe(8);
  });

  it("does not pull from the batch lane past the cap: the interactive lane, even with the batch lane owed its floor", () => {
    const busy = { callsInFlight: 1, receivedByLane: { interactive: 10, batch: 0 } };
    // One at a time while capped: what it pulled past the cap would wait in the batcher.
    expect(decideNext(at25({ ...busy, held: plus(batchJobs(7), oneInteractive), interactiveHeld: oneInteractive }))).toEqual({ kind: "top-up", lane: "batch", max: 1, waitSeconds: 0 });
    expect(decideNext(at25({ ...busy, held: plus(batchJobs(9), oneInteractive), interactiveHeld: oneInteractive }))).toMatchObject({ kind: "top-up", lane: "interactive" });
    // Batch jobs already waiting here count against the cap too.
    const waitingBatch = [job("b1", big), job("b2", big)];
    expect(decideNext(at25({ ...busy, waiting: waitingBatch, held: plus(batchJobs(8), oneInteractive), interactiveHeld: oneInteractive }))).toMatchObject({ kind: "top-up", lane: "interactive" });
    // Interactive lane empty and the batch lane at its cap: nothing to ask but the long poll.
    const interactiveEmpty = { queues: { interactive: { answeredEmpty: true } } };
    expect(decideNext(at25({ ...busy, ...interactiveEmpty, held: plus(batchJobs(9), oneInteractive), interactiveHeld: oneInteractive }))).toEqual({ kind: "top-up", lane: "interactive", max: 10, waitSeconds: 1 });
    expect(decideNext(at25({ ...busy, ...interactiveEmpty, held: batchJobs(9) }))).toEqual({ kind: "top-up", lane: "batch", max: 10, waitSeconds: 0 });
  });

  it("yielding by age while capped, still takes interactive-lane jobs (never batch ones); yielding to an interactive job, nothing", () => {
    const capped = { held: plus(batchJobs(8), oneInteractive), interactiveHeld: oneInteractive, othersOldestWaitingMs: NOW - 60_000 };
    expect(decideNext(at25({ ...capped, waiting: [job("b1", big)] }))).toEqual({ kind: "top-up", lane: "interactive", max: 10, waitSeconds: 0 });
    // Nothing waiting here: the long poll of the interactive lane once it came back empty; never the batch lane.
    expect(decideNext(at25({ ...capped, queues: { interactive: { answeredEmpty: true } } }))).toEqual({ kind: "top-up", lane: "interactive", max: 10, waitSeconds: 1 });
    // Jobs waiting here: the interactive lane is watched beside the loop, which yields meanwhile.
    const answeredEmpty = { queues: { interactive: { answeredEmpty: true } } };
    expect(decideNext(at25({ ...capped, waiting: [job("b1", big)], ...answeredEmpty }))).toEqual({ kind: "watch", lane: "interactive", max: 10, waitSeconds: 1 });
    expect(decideNext(at25({ ...capped, waiting: [job("b1", big)], ...answeredEmpty, interactiveWatching: true }))).toEqual({ kind: "yield" });
    expect(decideNext(at25({ ...capped, waiting: [job("b1", big)], othersInteractiveWaiting: true }))).toEqual({ kind: "yield" });
    // Not capped: a yield pulls nothing, as before.
    expect(decideNext(at25({ waiting: [job("b1", big)], held: batchJobs(8), othersOldestWaitingMs: NOW - 60_000 }))).toEqual({ kind: "yield" });
  });

  describe("the watch: jobs wait here, so the interactive lane is long-polled beside the loop, not looked in once a second", () => {
    const capped = { held: plus(batchJobs(9), oneInteractive), interactiveHeld: oneInteractive, callsInFlight: 2 };
    const waitingBatch = [job("b1", big)];
    const inBackoff = { queues: { interactive: { emptyUntilMs: NOW + 800 } } };

    it("watches while a batch job waits for the cap and the interactive lane is in its backoff", () => {
      expect(decideNext(at25({ ...capped, waiting: waitingBatch, ...inBackoff }))).toEqual({ kind: "watch", lane: "interactive", max: 10, waitSeconds: 1 });
    });

    it("asks the lane no other way while the watch runs, and does not end before it comes back", () => {
      const watching = { ...capped, waiting: waitingBatch, interactiveWatching: true };
      expect(decideNext(at25(watching))).toEqual({ kind: "drain" });
      expect(decideNext(at25({ ...watching, waiting: [], callsInFlight: 0, queues: { batch: { answeredEmpty: true } } }))).toEqual({ kind: "drain" });
      expect(decideNext(at25({ ...watching, waiting: [], callsInFlight: 0, interactiveWatching: false, queue: { answeredEmpty: true }, longPolledSinceIdle: true }))).toEqual({ kind: "done" });
    });

    it("never with nothing waiting (the loop's own long poll does), with no room, or within a poll of its deadline", () => {
      const bothEmpty = { queue: { answeredEmpty: true } };
      expect(decideNext(at25({ ...capped, ...bothEmpty }))).toEqual({ kind: "top-up", lane: "interactive", max: 10, waitSeconds: 1 });
      expect(decideNext(snapshot({ waiting: [job("a")], held: full, callsInFlight: 1, ...bothEmpty }))).toEqual({ kind: "drain" });
      expect(decideNext(at25({ ...capped, waiting: waitingBatch, ...inBackoff, topUpUntilMs: NOW + 999 }))).toEqual({ kind: "drain" });
      expect(decideNext(at25({ ...capped, waiting: waitingBatch, ...inBackoff, settings: { top_up: false } }))).toEqual({ kind: "drain" });
    });

    it("asks for no more than the room left after the interactive jobs that wait", () => {
      // 120 of 128 sequences held and the KV nearly full: the interactive job waits for tokens, 8 sequences are free.
      const held = { sequences: 120, tokens: rolling.limits.token_budget - 100 };
      const waiting = [job("i1", { priority: 9 }, "t0", "interactive")];
      expect(decideNext(snapshot({ held, waiting, callsInFlight: 2, ...inBackoff }))).toEqual({ kind: "watch", lane: "interactive", max: 7, waitSeconds: 1 });
    });
  });

  it("allows at most the percent that leaves a copy room for the route's largest job", () => {
    // (112,000 − 5,120) tokens × 0.000174 ms / 5.95 ms = 3.126.
    expect(maxSlowdownPercent(rolling, 3072 + 2048)).toBe(312);
  });
});

describe("topUpDeadline: batchers that started together do not all stop pulling together", () => {
  // Its own deadline has just passed; what the finish reserve leaves runs 15 s longer.
  const pastIt = (othersTopUpUntilMs: number | undefined, patch: SnapshotPatch = {}) =>
    snapshot({ callsInFlight: 1, topUpUntilMs: NOW, topUpLatestMs: NOW + 15_000, othersTopUpUntilMs, ...patch });

  it("keeps its own deadline before it, and with no latest past it", () => {
    expect(topUpDeadline(snapshot({ topUpLatestMs: NOW + 75_000 }))).toBe(NOW + 60_000);
    expect(topUpDeadline(snapshot({ topUpUntilMs: NOW - 1 }))).toBe(NOW - 1);
  });

  it("past it, goes on pulling while no other batcher says it pulls for longer", () => {
    expect(decideNext(pastIt(undefined))).toMatchObject({ kind: "top-up", lane: "interactive" });
    // The other stopped first (its deadline passed): this one takes the queues until a new one comes.
    expect(decideNext(pastIt(NOW - 2_000))).toMatchObject({ kind: "top-up" });
    // The other goes on too, but not as long as this one may.
    expect(topUpDeadline(pastIt(NOW + 14_000))).toBe(NOW + 15_000);
  });

  it("hands over to a batcher that pulls longer than it could, and is then a drain", () => {
    expect(decideNext(pastIt(NOW + 60_000))).toEqual({ kind: "drain" });
    expect(topUpDeadline(pastIt(NOW + 15_001))).toBe(NOW);
    // Only if it is seen to go on for a while yet.
    expect(topUpDeadline({ ...pastIt(NOW + 15_000 + HANDOVER_MARGIN_MS), nowMs: NOW + 15_000 })).toBe(NOW + 15_000);
  });

  it("puts back what found no room only after the deadline it goes on to", () => {
    const noRoom = { waiting: [job("a")], held: full, nowMs: NOW + REQUEUE_GRACE_MS };
    expect(decideNext(pastIt(undefined, noRoom))).toEqual({ kind: "drain" });
    expect(decideNext(pastIt(NOW + 60_000, noRoom))).toEqual({ kind: "requeue", reason: "late" });
  });
});

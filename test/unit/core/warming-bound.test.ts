import { describe, expect, it } from "vitest";
import { COMPONENT_NOT_READY, DEFAULT_MAX_WARMING_WAIT_SECONDS, decideWarmingWait, type WarmingWait } from "#shared/core/warming-bound";

const T0 = Date.parse("2026-12-01T00:00:00.000Z");
const wait = (over: Partial<WarmingWait>): WarmingWait => ({
  nowMs: T0,
  warmingSinceMs: undefined,
  deadlineMs: undefined,
  delaySeconds: 30,
  maxWaitSeconds: 600,
  waitingFor: "llama-3-8b-ic",
  ...over,
});

describe("decideWarmingWait", () => {
  it("starts the bound's clock at a job's first wait, and waits the recheck period", () => {
    expect(decideWarmingWait(wait({}))).toEqual({ kind: "wait", delaySeconds: 30, warmingSinceMs: T0 });
  });

  it("keeps the first wait's start on later waits", () => {
    expect(decideWarmingWait(wait({ nowMs: T0 + 90_000, warmingSinceMs: T0 }))).toEqual({ kind: "wait", delaySeconds: 30, warmingSinceMs: T0 });
  });

  it("waits no longer than the bound leaves, so the job is looked at when it is reached", () => {
    expect(decideWarmingWait(wait({ nowMs: T0 + 590_000, warmingSinceMs: T0 }))).toMatchObject({ kind: "wait", delaySeconds: 10 });
    expect(decideWarmingWait(wait({ nowMs: T0 + 599_500, warmingSinceMs: T0 }))).toMatchObject({ kind: "wait", delaySeconds: 1 });
  });

  it("fails the job once the bound is reached, saying what never became ready and for how long it was waited on", () => {
    expect(decideWarmingWait(wait({ nowMs: T0 + 601_400, warmingSinceMs: T0 }))).toEqual({
      kind: "give-up",
      code: COMPONENT_NOT_READY,
      reason: "no copy of llama-3-8b-ic became ready in 601 s of waiting (max_warming_wait_seconds: 600)",
    });
  });

  it("expires a job whose deadline has passed, whatever the bound", () => {
    expect(decideWarmingWait(wait({ nowMs: T0 + 5_000, warmingSinceMs: T0, deadlineMs: T0 + 5_000 }))).toEqual({ kind: "expire" });
  });

  it("waits no longer than the deadline leaves", () => {
    expect(decideWarmingWait(wait({ deadlineMs: T0 + 12_300 }))).toMatchObject({ kind: "wait", delaySeconds: 13 });
  });

  it("takes a start in the future (a clock behind the writer's) as now", () => {
    expect(decideWarmingWait(wait({ warmingSinceMs: T0 + 60_000 }))).toEqual({ kind: "wait", delaySeconds: 30, warmingSinceMs: T0 });
  });

  it("by default bounds the wait at 30 minutes: 60 rechecks of 30 s", () => {
    expect(DEFAULT_MAX_WARMING_WAIT_SECONDS).toBe(1800);
    const bounded = wait({ maxWaitSeconds: DEFAULT_MAX_WARMING_WAIT_SECONDS });
    let nowMs = T0;
    let since: number | undefined;
    let waits = 0;
    for (;;) {
      const decision = decideWarmingWait({ ...bounded, nowMs, warmingSinceMs: since });
      if (decision.kind !== "wait") {
        expect(decision.kind).toBe("give-up");
        break;
      }
      waits++;
      since = decision.warmingSinceMs;
      nowMs += decision.delaySeconds * 1000;
    }
    expect(waits).toBe(60);
    expect(nowMs - T0).toBe(1_800_000);
  });
});

import { describe, expect, it } from "vitest";
import { capacityOf, decideStaticBatch, demandOf, fits, kvTokensOf } from "#shared/core/gpu-batch-policy";
import type { PackItem } from "#shared/core/packing";
import { defaultCatalog } from "../../helpers/fakes.ts";
import { h100Profile } from "../../helpers/h100.ts";

const item = (over: Partial<PackItem> = {}): PackItem => ({ id: "j", promptTokens: 512, maxNewTokens: 512, payloadBytes: 100, priority: 5, submittedMs: 0, ...over });
const component = defaultCatalog().components.get("llama-2-7b-ic");
if (!component) throw new Error("the default component is gone");
const settings = { dispatch: "adaptive", max_wait_ms: 1000, latency_objective_ms: 30_000 } as const;

describe("window policy", () => {
  it("counts a job's KV tokens the way its engine admits it", () => {
    expect(demandOf(item(), "reserve")).toEqual({ sequences: 1, tokens: 1024 });
    expect(demandOf(item(), "paged")).toEqual({ sequences: 1, tokens: 768 });
    // A GPU batch's KV tokens: its jobs' demands summed, as its engine admits them.
    expect(kvTokensOf([item(), item({ promptTokens: 100, maxNewTokens: 50 })], "reserve")).toBe(1024 + 150);
    expect(kvTokensOf([item(), item({ promptTokens: 100, maxNewTokens: 50 })], "paged")).toBe(768 + 125);
    expect(kvTokensOf([])).toBe(0);
  });

  it("sizes a component's room by its copies, capped by ops", () => {
    expect(capacityOf(component, { max_in_flight_per_copy: 128 })).toEqual({ sequences: 128, tokens: 112_000 });
    expect(capacityOf({ ...component, copies: 3 }, { max_in_flight_per_copy: 10 })).toEqual({ sequences: 30, tokens: 336_000 });
  });

  it("admits while sequences and tokens fit, and always admits into an idle component", () => {
    const room = { sequences: 2, tokens: 2000 };
    expect(fits(room, { sequences: 1, tokens: 900 }, { sequences: 1, tokens: 1024 })).toBe(true);
    expect(fits(room, { sequences: 1, tokens: 1000 }, { sequences: 1, tokens: 1024 })).toBe(false);
    expect(fits(room, { sequences: 2, tokens: 0 }, { sequences: 1, tokens: 1 })).toBe(false);
    expect(fits(room, { sequences: 0, tokens: 0 }, { sequences: 1, tokens: 99_999 })).toBe(true);
  });

  it("holds a small static batch when arrivals will fill it within the wait", () => {
    const batch = [item({ submittedMs: 0 })];
    expect(decideStaticBatch({ batch, full: false, nowMs: 100, arrivalsPerMs: 0.05, profile: h100Profile, settings })).toEqual({ kind: "wait", forMs: 900 });
  });

  it("sends a static batch at once when it is full, nothing more is coming, or the hold is used up", () => {
    const batch = [item({ submittedMs: 0 })];
    expect(decideStaticBatch({ batch, full: true, nowMs: 100, arrivalsPerMs: 1, profile: h100Profile, settings })).toEqual({ kind: "dispatch" });
    expect(decideStaticBatch({ batch, full: false, nowMs: 100, arrivalsPerMs: 0, profile: h100Profile, settings })).toEqual({ kind: "dispatch" });
    expect(decideStaticBatch({ batch, full: false, nowMs: 1000, arrivalsPerMs: 1, profile: h100Profile, settings })).toEqual({ kind: "dispatch" });
    expect(decideStaticBatch({ batch, full: false, nowMs: 100, arrivalsPerMs: 1, profile: h100Profile, settings: { ...settings, dispatch: "immediate" } })).toEqual({ kind: "dispatch" });
  });

  it("never holds a job past its latency objective: the hold leaves the batch time to run", () => {
    const batch = [item({ submittedMs: 0 })];
    const decide = (objective: number) =>
      decideStaticBatch({ batch, full: false, nowMs: 100, arrivalsPerMs: 1, profile: h100Profile, settings: { ...settings, max_wait_ms: 3000, latency_objective_ms: objective } });
    // One 512 + 512 sequence runs about 3.12 s on the H100.
    const held = decide(3500);
    expect(held.kind).toBe("wait");
    expect(held.kind === "wait" && held.forMs).toBeGreaterThan(250);
    expect(held.kind === "wait" && held.forMs).toBeLessThan(300);
    expect(decide(3200)).toEqual({ kind: "dispatch" });
  });

  it("scales the model's batch times by the measured latency factor", () => {
    const one = [item({ submittedMs: 0 })];
    const decideOne = (latencyFactor: number | undefined) =>
      decideStaticBatch({ batch: one, full: false, nowMs: 100, arrivalsPerMs: 1, latencyFactor, profile: h100Profile, settings: { ...settings, max_wait_ms: 3000, latency_objective_ms: 3500 } });
    // A copy 10% slower than the model runs the 3.12 s batch in 3.43 s: no slack is left before the objective.
    expect(decideOne(undefined).kind).toBe("wait");
    expect(decideOne(1).kind).toBe("wait");
    expect(decideOne(1.1)).toEqual({ kind: "dispatch" });
    // Beside a slower batch the same wait costs less: 20 jobs and 5 arriving a second pay for a hold at 1.5x, not at 1x.
    const twenty = Array.from({ length: 20 }, (_, i) => item({ id: `j${i}`, submittedMs: 0 }));
    const decideTwenty = (latencyFactor: number) => decideStaticBatch({ batch: twenty, full: false, nowMs: 0, arrivalsPerMs: 0.005, latencyFactor, profile: h100Profile, settings }).kind;
    expect(decideTwenty(1)).toBe("dispatch");
    expect(decideTwenty(1.5)).toBe("wait");
  });
});

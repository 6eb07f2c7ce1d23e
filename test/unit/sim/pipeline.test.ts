import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { decodeStepMs, prefillMs, staticBatchTimeline } from "#shared/core/latency-model";
import { defaultRouteSettings } from "#shared/core/route-settings";
import type { Component, Route } from "#shared/core/routes";
import { simulate } from "#shared/sim/pipeline";
import { simJobsOf, simSetup, routeGpuHourPrice } from "#shared/sim/setup";
import { summarize } from "#shared/sim/summary";
import { generateTrace } from "#shared/sim/trace";
import type { Overheads } from "#shared/sim/world";

const route = loadRouteCatalog(join(process.cwd(), "infra", "routes.yml")).routes.get("llama-2-7b") as Route;
const component = route.components[0] as Component;
const profile = component.latency;
const NO_OVERHEADS: Overheads = { submitMs: 0, deliverMs: 0, receiveMs: 0, refreshMs: 0, claimMs: 0, invokeMs: 0, resultMs: 0, notifyMs: 0 };
const poisson = (rpm: number, durationMs: number, seed = 7) =>
  simJobsOf(generateTrace({ seed, durationMs, arrivals: { kind: "poisson", rpm }, lengths: { kind: "fixed", promptTokens: 512, maxTokens: 512 } }));

describe("the pipeline simulator", () => {
  it("gives the same run for the same trace: virtual time, no randomness", () => {
    // Prepare
    const trace = poisson(400, 30_000);
    const setup = simSetup(route, defaultRouteSettings(route));

    // Act
    const [a, b] = [simulate(setup, trace), simulate(setup, trace)];

    // Assess
    expect(a.outcomes.map((o) => [o.startedMs, o.finishedMs])).toEqual(b.outcomes.map((o) => [o.startedMs, o.finishedMs]));
    expect(a.outcomes.every((o) => o.finishedMs !== undefined)).toBe(true);
    expect(a.endMs).toBe(b.endMs);
  });

  it("answers one job alone in the latency profile's time for it, with no overheads", () => {
    // Prepare
    const job = { id: "alone", atMs: 1234, promptTokens: 512, maxTokens: 512, lane: "interactive" as const };
    const expected = staticBatchTimeline(profile, [{ promptTokens: 512, newTokens: 512 }]).totalMs;

    // Act
    const run = simulate(simSetup(route, defaultRouteSettings(route), { overheads: NO_OVERHEADS }), [job]);

    // Assess
    const [only] = run.outcomes;
    expect(only?.startedMs).toBe(1234);
    expect((only?.finishedMs ?? 0) - 1234).toBeCloseTo(expected, 6);
    expect(only?.completionTokens).toBe(512);
  });

  it("serves a saturating trace at the copy's capacity from the profile, within 3%", () => {
    // Prepare: past saturation, the copy holds what its KV budget admits of 512 + 512; in steady
    // state their contexts average 512 + 256 tokens and each request costs one prefill.
    const admitted = Math.floor((component.limits.token_budget) / 1024);
    const perBatchMs = 512 * decodeStepMs(profile, admitted, admitted * 768) + admitted * prefillMs(profile, 512);
    const capacityRpm = (admitted * 60_000) / perBatchMs;
    const trace = poisson(900, 60_000);

    // Act
    const run = simulate(simSetup(route, defaultRouteSettings(route)), trace, { untilMs: 70_000 });
    const predicted = summarize(run, { durationMs: 60_000, kind: "saturated", warmupMs: 20_000, pricePerGpuHour: routeGpuHourPrice(route) });

    // Assess
    expect(predicted.throughput_rpm / capacityRpm).toBeGreaterThan(0.97);
    expect(predicted.throughput_rpm / capacityRpm).toBeLessThan(1.03);
    expect(predicted.gpu_busy).toBeGreaterThan(0.95);
  });

  it("holds a static batch on a dynamic-batch engine and sends it fuller than one job", () => {
    // Prepare: the bench's static variant of the route.
    const staticRoute: Route = { ...route, components: route.components.map((c) => ({ ...c, engine: "lmi-dynamic" as const })) };
    const trace = poisson(300, 20_000);

    // Act
    const run = simulate(simSetup(staticRoute, defaultRouteSettings(staticRoute)), trace);

    // Assess
    expect(run.outcomes.every((o) => o.finishedMs !== undefined)).toBe(true);
    const sizes = run.outcomes.map((o) => o.gpuBatchSize ?? 0);
    expect(Math.max(...sizes)).toBeGreaterThan(1);
  });
});

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { decodeStepMs, prefillMs, staticBatchTimeline } from "#shared/core/latency-model";
import { defaultRouteSettings } from "#shared/core/route-settings";
import type { Component, Route } from "#shared/core/routes";
import { simulate } from "#shared/sim/pipeline";
import { simJobsOf, simSetup, routeGpuHourPrice } from "#shared/sim/setup";
import { summarize } from "#shared/sim/summary";
import { percentile } from "#shared/core/stats";
import { generateTrace } from "#shared/sim/trace";
import { virtualClock } from "#shared/sim/virtual-clock";
import { EMBEDDED_STACK_CPU, SimCpu, type Overheads } from "#shared/sim/world";

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

  it("makes a burst wait for the stack's cores, and leaves a lone job's time as the fixed costs give it", () => {
    // Prepare: 40 jobs in 100 ms; one job alone.
    const burst = Array.from({ length: 40 }, (_, i) => ({ id: `b${i}`, atMs: i * 2.5, promptTokens: 512, maxTokens: 512, lane: "interactive" as const }));
    const alone = [{ id: "alone", atMs: 0, promptTokens: 512, maxTokens: 512, lane: "interactive" as const }];
    const settings = defaultRouteSettings(route);
    const [withCores, unbounded] = [simSetup(route, settings, { cpu: EMBEDDED_STACK_CPU }), simSetup(route, settings, { cpu: null })];
    const p95 = (run: ReturnType<typeof simulate>) => percentile(run.outcomes.map((o) => (o.finishedMs ?? Number.NaN) - o.job.atMs), 0.95);

    // Act
    const [burstOnCores, burstUnbounded] = [simulate(withCores, burst), simulate(unbounded, burst)];
    const [aloneOnCores, aloneUnbounded] = [simulate(withCores, alone), simulate(unbounded, alone)];

    // Assess
    // 40 submits of 8 ms, each with 30 ms beside its path, on 2 cores: the last stored about
    // 0.75 s after it came, then its claim and invoke wait behind the others' too.
    expect(p95(burstOnCores)).toBeGreaterThan(p95(burstUnbounded) + 750);
    expect(aloneOnCores.outcomes[0]?.finishedMs).toBe(aloneUnbounded.outcomes[0]?.finishedMs);
  });
});

describe("the stack's CPU in the simulator", () => {
  it("shares its cores among the steps running, as the OS shares them among processes", () => {
    // Prepare
    const clock = virtualClock();
    const cpu = new SimCpu(clock, { cores: 2, offPathMsPerJob: 0 });
    const done: [string, number][] = [];

    // Act
    for (const [name, ms] of [["a", 10], ["b", 30], ["c", 5], ["d", 5]] as const) cpu.run(ms, () => done.push([name, clock.now()]));
    clock.run();

    // Assess: four steps on two cores go at half speed until c and d are done at 10 ms (5 ms of
    // work each); then a (5 left) and b (25 left) have a core each.
    expect(done).toEqual([["c", 10], ["d", 10], ["a", 15], ["b", 35]]);
  });

  it("runs every step at once without a core count (Lambda scales out)", () => {
    // Prepare
    const clock = virtualClock();
    const cpu = new SimCpu(clock, undefined);
    const done: number[] = [];

    // Act
    for (let i = 0; i < 5; i++) cpu.run(10, () => done.push(clock.now()));
    clock.run();

    // Assess
    expect(done).toEqual([10, 10, 10, 10, 10]);
  });
});

import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { LATENCY_FACTOR_DECAY_MS, LATENCY_SAMPLE_WEIGHT } from "#shared/core/hold-measurements";
import { staticBatchMs } from "#shared/core/latency-model";
import { defaultRouteSettings, type RouteSettings } from "#shared/core/route-settings";
import { buildRouteCatalog } from "#shared/core/routes";
import { memoryDeps } from "../../helpers/fakes.ts";

/** The static-batch hold's measured inputs, end to end through a batcher run on FakeTime. */
type Deps = ReturnType<typeof memoryDeps>;
const MODEL = "llama-2-7b";
const COMPONENT = "llama-2-7b-ic";

function staticCatalog() {
  const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
  raw.components[COMPONENT].engine = "lmi-dynamic";
  return buildRouteCatalog(raw);
}

async function setup(patch: Partial<RouteSettings>): Promise<Deps> {
  const deps = memoryDeps(staticCatalog());
  const route = deps.catalog.routes.get(MODEL);
  if (!route) throw new Error("no default route");
  await deps.routeSettings.put(MODEL, { ...defaultRouteSettings(route), ...patch }, deps.clock.now());
  return deps;
}

/** Submits one job; its predicted time alone on a copy, by the latency model. */
async function submitOne(deps: Deps): Promise<number> {
  const { job } = await submitJob(deps, "acme", { model: MODEL, prompt: "a prompt", max_tokens: 64 });
  const component = deps.catalog.components.get(COMPONENT);
  if (!component) throw new Error("no default component");
  return staticBatchMs(component.latency, [{ promptTokens: job.prompt_tokens, newTokens: 64 }]);
}

const run = (deps: Deps) => processDelivery(deps, deps.queue.takeDelivery(MODEL, 1), { topUpUntil: new Date(deps.time.nowMs + 60_000) });

/** Each call to the copy takes `slowdown` times its predicted time, on the fake clock. */
function copyRunsSlow(deps: Deps, predictedMs: () => number, slowdown: number): void {
  const invoke = deps.invoker.invoke.bind(deps.invoker);
  deps.invoker.invoke = async (component, inputs, options) => {
    await deps.time.sleep(slowdown * predictedMs());
    return invoke(component, inputs, options);
  };
}

/** When the batcher called the copy, after `startMs`. */
function invokeTimes(deps: Deps, startMs: number): number[] {
  const times: number[] = [];
  const invoke = deps.invoker.invoke.bind(deps.invoker);
  deps.invoker.invoke = (component, inputs, options) => {
    times.push(deps.time.nowMs - startMs);
    return invoke(component, inputs, options);
  };
  return times;
}

describe("the static-batch hold's measurements", () => {
  it("reports how its static batches ran against the model, and a fresh invocation goes on from the route's factor", async () => {
    // No hold (max_wait_ms 0): each run sends its one job at once.
    const deps = await setup({ max_wait_ms: 0 });
    let predictedMs = await submitOne(deps);
    copyRunsSlow(deps, () => predictedMs, 1.6);

    await run(deps);
    const first = (await deps.queueBoard.read(MODEL)).latency;
    expect(first?.factor).toBeCloseTo(Math.exp(LATENCY_SAMPLE_WEIGHT * Math.log(1.6)), 3);

    predictedMs = await submitOne(deps);
    await run(deps);
    const second = (await deps.queueBoard.read(MODEL)).latency;
    // From the route's factor, one more sample of 1.6 (the first decayed over the second batch's few seconds).
    const decayed = Math.log(first?.factor ?? 1) * Math.exp(-(predictedMs * 1.6) / LATENCY_FACTOR_DECAY_MS);
    expect(second?.factor).toBeCloseTo(Math.exp(decayed + LATENCY_SAMPLE_WEIGHT * (Math.log(1.6) - decayed)), 3);
    expect(second?.atMs).toBeGreaterThan(first?.atMs ?? Number.POSITIVE_INFINITY);
  });

  it("drops the time of a batch that shared its copy with another batcher's: it waited behind that one in the container", async () => {
    const deps = await setup({ max_wait_ms: 0 });
    const predictedMs = await submitOne(deps);
    copyRunsSlow(deps, () => predictedMs, 3);
    // Another batcher's batch on the same copy, published once this one's call has started (their starts crossed).
    void deps.time.sleep(100).then(() => deps.ledger.publish(COMPONENT, "other-batcher", { load: { sequences: 128, tokens: 112_000 } }, new Date(deps.time.nowMs + 60_000)));
    await run(deps);
    expect(deps.invoker.calls).toHaveLength(1);
    expect((await deps.queueBoard.read(MODEL)).latency).toBeUndefined();
  });

  it("measures nothing with measured_hold off: the board keeps no factor", async () => {
    const deps = await setup({ max_wait_ms: 0, measured_hold: false });
    const predictedMs = await submitOne(deps);
    copyRunsSlow(deps, () => predictedMs, 1.6);
    await run(deps);
    expect((await deps.queueBoard.read(MODEL)).latency).toBeUndefined();
  });

  /** A board whose last closed window saw `arrivalsPerSecond` tickets a second, just now. */
  async function routeArrivals(deps: Deps, arrivalsPerSecond: number): Promise<void> {
    const opened = { startedMs: deps.time.nowMs - 10_000, departedAtStart: 0, backlogged: false, submittedAtStart: 0 };
    await deps.queueBoard.closeRateWindow(MODEL, undefined, undefined, opened);
    const rate = { perSecond: 0, backlogged: false, atMs: deps.time.nowMs, arrivalsPerSecond };
    await deps.queueBoard.closeRateWindow(MODEL, opened, rate, { startedMs: deps.time.nowMs, departedAtStart: 0, backlogged: false, submittedAtStart: 1 });
  }

  it("holds a fresh invocation's one job on the route's measured arrivals, where its own pulls (none yet) would send it at once", async () => {
    const measured = await setup({ max_wait_ms: 2_000 });
    await submitOne(measured);
    await routeArrivals(measured, 20);
    const heldUntil = invokeTimes(measured, measured.time.nowMs);
    await run(measured);
    // Held max_wait_ms from its submit; the loop notices within one tick.
    expect(heldUntil).toHaveLength(1);
    expect(heldUntil[0]).toBeGreaterThanOrEqual(2_000);
    expect(heldUntil[0]).toBeLessThan(2_100);

    const modelOnly = await setup({ max_wait_ms: 2_000, measured_hold: false });
    await submitOne(modelOnly);
    await routeArrivals(modelOnly, 20);
    const sentAt = invokeTimes(modelOnly, modelOnly.time.nowMs);
    await run(modelOnly);
    expect(sentAt).toHaveLength(1);
    expect(sentAt[0]).toBeLessThan(100);
  });

  it("counts on the pulls of its own run again once the route's rate is stale", async () => {
    const deps = await setup({ max_wait_ms: 2_000 });
    await routeArrivals(deps, 20);
    deps.time.advance(60_000);
    await submitOne(deps);
    const sentAt = invokeTimes(deps, deps.time.nowMs);
    await run(deps);
    expect(sentAt[0]).toBeLessThan(100);
  });
});

import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { seededRandom } from "#shared/sim/trace";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { staticBatchMs } from "#shared/core/latency-model";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { buildRouteCatalog } from "#shared/core/routes";
import { memoryDeps } from "../../helpers/fakes.ts";

/**
 * The static-batch hold over a whole trace, on FakeTime: a seeded Poisson trace of 512 + 512 jobs,
 * two pollers delivering up to 10 messages each (the mapping's MaximumConcurrency 2 and BatchSize
 * 10), and one copy that runs one static batch at a time in `slowdown` x the latency model's time
 * (a second call waits behind the first, as in the container). README, "The static-batch hold's
 * measured inputs", quotes these runs.
 */
const MODEL = "llama-2-7b";
const POLLERS = 2;

const seeded = seededRandom;

async function simulate(options: { rpm: number; slowdown: number; measuredHold: boolean; durationMs: number }) {
  const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
  raw.components["llama-2-7b-ic"].engine = "lmi-dynamic";
  const deps = memoryDeps(buildRouteCatalog(raw));
  const route = deps.catalog.routes.get(MODEL);
  const component = route?.components[0];
  if (!route || !component) throw new Error("no default route");
  await deps.routeSettings.put(MODEL, { ...defaultRouteSettings(route), measured_hold: options.measuredHold }, deps.clock.now());
  const profile = component.latency;
  const prompt = Array.from({ length: 480 }, (_, i) => `w${i % 50}`).join(" ");
  let promptTokens = 0;
  let copyFree = Promise.resolve();
  const invoke = deps.invoker.invoke.bind(deps.invoker);
  deps.invoker.invoke = async (c, inputs, o) => {
    const ms = options.slowdown * staticBatchMs(profile, inputs.map((i) => ({ promptTokens, newTokens: i.max_new_tokens })));
    const turn = copyFree.then(() => deps.time.sleep(ms));
    copyFree = turn;
    await turn;
    return invoke(c, inputs, o);
  };
  const startMs = deps.time.nowMs;
  const random = seeded(20261127);
  let arriving = true;
  const arrivals = (async () => {
    for (let atMs = 0; ; ) {
      atMs += (-Math.log(1 - random()) * 60_000) / options.rpm;
      if (atMs > options.durationMs) break;
      await deps.time.sleep(startMs + atMs - deps.time.nowMs);
      promptTokens = (await submitJob(deps, "acme", { model: MODEL, prompt, max_tokens: 512 })).job.prompt_tokens;
    }
    arriving = false;
  })();
  let running = 0;
  const runs: Promise<void>[] = [];
  const waiting = () => deps.queue.visible.some((m) => m.route === MODEL);
  while (arriving || running > 0 || waiting()) {
    while (running < POLLERS && waiting()) {
      const delivered = deps.queue.takeDelivery(MODEL, 10);
      running++;
      const done = processDelivery(deps, delivered, { topUpUntil: new Date(deps.time.nowMs + 60_000) }).then(async (report) => {
        for (const m of delivered.filter((d) => report.retry.includes(d.messageId))) await deps.queue.release(MODEL, m.receiptHandle, 0, m.lane);
      });
      runs.push(done.finally(() => running--));
    }
    await deps.time.sleep(100);
  }
  await Promise.all([arrivals, ...runs]);
  const latencies = [...deps.jobs.jobs.values()].map((j) => Date.parse(j.finished_at ?? "") - Date.parse(j.created_at)).sort((a, b) => a - b);
  return {
    batches: deps.invoker.calls.map((c) => c.inputs.length),
    p50Ms: latencies[Math.floor(latencies.length / 2)],
    unfinished: latencies.filter((l) => Number.isNaN(l)).length,
    factor: (await deps.queueBoard.read(MODEL)).latency?.factor,
  };
}

describe("the static-batch hold over a trace, on FakeTime", () => {
  it("leaves on the board the copy's pace, not the waits of batches whose starts crossed", async () => {
    // Counting every batch, the first read 2.0: half the batches waited behind another in the container.
    const asModel = await simulate({ rpm: 200, slowdown: 1, measuredHold: true, durationMs: 120_000 });
    expect(asModel.unfinished).toBe(0);
    expect(asModel.factor).toBeCloseTo(1, 2);
    // It lags the true 1.3: concurrent batchers each fold in their own batches, and the last report wins.
    const slower = await simulate({ rpm: 200, slowdown: 1.3, measuredHold: true, durationMs: 120_000 });
    expect(slower.factor).toBeGreaterThan(1.1);
    expect(slower.factor).toBeLessThanOrEqual(1.3);
  });

  it("runs the same batches in both modes while the copy stays busy: the jobs of a copy that frees have waited past max_wait_ms", async () => {
    const measured = await simulate({ rpm: 59, slowdown: 1, measuredHold: true, durationMs: 60_000 });
    const modelOnly = await simulate({ rpm: 59, slowdown: 1, measuredHold: false, durationMs: 60_000 });
    expect(measured.unfinished).toBe(0);
    expect(measured.batches).toEqual(modelOnly.batches);
    expect(measured.p50Ms).toBe(modelOnly.p50Ms);
  });
});

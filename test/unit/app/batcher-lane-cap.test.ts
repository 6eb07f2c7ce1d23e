import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitBatch } from "#shared/app/submit";
import { INTERACTIVE_MEMORY_MS } from "#shared/core/batcher-decision";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { submitJob } from "#shared/app/submit";
import { memoryDeps } from "../../helpers/fakes.ts";

/**
 * The batch lane's cap beside interactive work, through the batcher on memory fakes and FakeTime.
 * At interactive_slowdown_percent 1 the batch lane may add 0.0595 ms to a Llama-2-7B H100 step:
 * 342 context tokens, less than two of these 200-token jobs. So while interactive work is around
 * the copy runs one batch job at a time, and the whole batch at once otherwise.
 */
type Deps = ReturnType<typeof memoryDeps>;
const COMPONENT = "llama-2-7b-ic";
const CALL_MS = 1_000;

async function setup(slowdownPercent = 1): Promise<{ deps: Deps; startMs: number; starts: { atMs: number; inFlight: number }[] }> {
  const deps = memoryDeps();
  const route = deps.catalog.routes.get("llama-2-7b");
  if (!route) throw new Error("no default route");
  await deps.routeSettings.put("llama-2-7b", { ...defaultRouteSettings(route), interactive_slowdown_percent: slowdownPercent }, deps.clock.now());
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ custom_id: `b${i}`, body: { model: "llama-2-7b", prompt: `b${i}`, max_tokens: 200 } }));
  await submitBatch(deps, "acme", lines.join("\n"));
  // Every call takes a second of virtual time; each start notes how many run with it.
  Object.defineProperty(deps.invoker, "gate", { get: () => deps.time.sleep(CALL_MS) });
  const startMs = deps.time.nowMs;
  const starts: { atMs: number; inFlight: number }[] = [];
  for (const method of ["invoke", "invokeStream"] as const) {
    const original = deps.invoker[method].bind(deps.invoker) as (...args: unknown[]) => Promise<unknown>;
    Object.assign(deps.invoker, {
      [method]: (...args: unknown[]) => {
        const answer = original(...args);
        starts.push({ atMs: deps.time.nowMs - startMs, inFlight: deps.invoker.inFlight });
        return answer;
      },
    });
  }
  return { deps, startMs, starts };
}

function run(deps: Deps, messages = 1) {
  return processDelivery(deps, deps.queue.takeDelivery("llama-2-7b", messages, "batch"), { topUpUntil: new Date(deps.time.nowMs + 60_000) });
}

describe("the batch lane's cap, on memory fakes and FakeTime", () => {
  it("runs the batch one job at a time beside another batcher's running interactive job, and fills the copy once it is gone and forgotten", async () => {
    const { deps, startMs, starts } = await setup();
    // Another batcher runs an interactive job on the copy until 5 s in.
    const interactive = { sequences: 1, tokens: 1_024 };
    await deps.ledger.publish(COMPONENT, "interactive-batcher", { load: interactive, interactiveLoad: interactive }, new Date(startMs + 5_000));

    await run(deps);

    expect(starts).toHaveLength(20);
    // One at a time while the entry lives (until 5 s) and for INTERACTIVE_MEMORY_MS after the batcher
    // last read it (it reads every 500 ms), then the rest together.
    const lift = starts.find((s) => s.inFlight > 1)?.atMs ?? Number.NaN;
    expect(lift).toBeGreaterThanOrEqual(4_500 + INTERACTIVE_MEMORY_MS);
    expect(lift).toBeLessThanOrEqual(5_000 + INTERACTIVE_MEMORY_MS);
    const before = starts.filter((s) => s.atMs < lift);
    expect(before.length).toBeGreaterThanOrEqual(14);
    expect(before.every((s) => s.inFlight === 1)).toBe(true);
    expect(starts.filter((s) => s.atMs === lift)).toHaveLength(20 - before.length);
  });

  it("takes an interactive job that comes while batch jobs wait for the cap at once, not at its next look in the lane", async () => {
    const { deps, startMs } = await setup();
    const interactive = { sequences: 1, tokens: 1_024 };
    await deps.ledger.publish(COMPONENT, "interactive-batcher", { load: interactive, interactiveLoad: interactive }, new Date(startMs + 5_000));
    // Arrivals between the batcher's looks: it last found the lane empty before each.
    const arrivals = [2_300, 3_750, 6_420];
    const submitted = Promise.all(
      arrivals.map(async (atMs) => {
        await deps.time.sleep(atMs);
        return (await submitJob(deps, "acme", { model: "llama-2-7b", prompt: `i${atMs}`, max_tokens: 200 })).job;
      }),
    );

    await run(deps);

    const waits = await Promise.all((await submitted).map(async (job) => Date.parse((await deps.jobs.get(job.job_id))?.first_claimed_at ?? "") - Date.parse(job.created_at)));
    // Without the watch these waited 400 to 1,000 ms, up to a second's backoff between looks.
    for (const wait of waits) expect(wait).toBeLessThan(50);
  });

  it("remembers interactive work another batcher saw: a batcher started since stays capped until that memory lapses", async () => {
    const { deps, startMs, starts } = await setup();
    // A batch holder (one batch job: the cap's whole allowance here) saw interactive work 2 s ago.
    await deps.ledger.publish(COMPONENT, "batch-batcher", { load: { sequences: 1, tokens: 1_024 }, interactiveSeenMs: startMs - 2_000 }, new Date(startMs + 60_000));

    await run(deps);

    expect(starts).toHaveLength(20);
    // Nothing fits under the cap beside the other's batch job until 8 s in; then all of it.
    expect(starts.every((s) => s.atMs === INTERACTIVE_MEMORY_MS - 2_000)).toBe(true);
  });

  it("shares the room under the cap with a batcher that started beside it, rather than each filling it", async () => {
    // At 10% the batch lane may add 0.595 ms to the step: 3,420 context tokens, 17 of these jobs.
    const { deps, startMs, starts } = await setup(10);
    const interactive = { sequences: 1, tokens: 1_024 };
    await deps.ledger.publish(COMPONENT, "interactive-batcher", { load: interactive, interactiveLoad: interactive }, new Date(startMs + 5_000));

    // Two batchers handed ten batch-lane messages each at once, as the mappings invoke them when a file lands.
    await Promise.all([run(deps, 10), run(deps, 10)]);

    expect(starts).toHaveLength(20);
    // Each saw room for 17 and, without sharing it, started its ten: 20 on the copy.
    expect(deps.invoker.maxInFlight).toBeLessThanOrEqual(17);
    expect(deps.invoker.maxInFlight).toBeGreaterThanOrEqual(15);
  });

  it("runs the whole batch at once with no interactive work around, as before the cap", async () => {
    const { deps, starts } = await setup();

    await run(deps);

    expect(starts).toHaveLength(20);
    expect(starts.every((s) => s.atMs === 0)).toBe(true);
    expect(deps.invoker.maxInFlight).toBe(20);
  });

  it("publishes its own interactive jobs' load for the other batchers, in the entry it publishes anyway", async () => {
    const { deps, startMs } = await setup();
    await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "now", max_tokens: 200 });
    const seen: { sequences: number; tokens: number }[] = [];
    const publish = deps.ledger.publish.bind(deps.ledger);
    deps.ledger.publish = async (component, holder, entry, expiresAt) => {
      if (entry.interactiveLoad) seen.push(entry.interactiveLoad);
      return publish(component, holder, entry, expiresAt);
    };

    await processDelivery(deps, deps.queue.takeDelivery("llama-2-7b", 1, "interactive"), { topUpUntil: new Date(startMs + 60_000) });

    expect(seen.some((l) => l.sequences === 1 && l.tokens > 200)).toBe(true);
    // The last entry (the run's end) holds nothing.
    expect(seen.at(-1)).toEqual({ sequences: 0, tokens: 0 });
  });
});

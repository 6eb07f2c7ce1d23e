import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { LEDGER_REFRESH_MS, LEDGER_REFRESH_WAITING_MS, LEDGER_TTL_MS } from "#shared/app/batcher/ledger-sync";
import { REQUEUE_GRACE_MS } from "#shared/core/batcher-decision";
import { defaultRouteSettings, type RouteSettings } from "#shared/core/route-settings";
import { buildRouteCatalog } from "#shared/core/routes";
import { memoryDeps } from "../../helpers/fakes.ts";

/** The batcher's clock-driven behaviour, on FakeTime: every instant below is virtual and exact. */
type Deps = ReturnType<typeof memoryDeps>;
const COMPONENT = "llama-2-7b-ic";

async function setup(patch: Partial<RouteSettings>, catalog = memoryDeps().catalog): Promise<Deps> {
  const deps = memoryDeps(catalog);
  const route = deps.catalog.routes.get("llama-2-7b");
  if (!route) throw new Error("no default route");
  await deps.routeSettings.put("llama-2-7b", { ...defaultRouteSettings(route), ...patch }, deps.clock.now());
  return deps;
}

async function submit(deps: Deps, count: number, priority?: number): Promise<void> {
  for (let i = 0; i < count; i++) await submitJob(deps, "acme", { model: "llama-2-7b", prompt: `prompt ${i}`, max_tokens: 8, priority });
}

/** Another batcher holding every sequence of the copy, until long after the test. */
async function othersHoldTheCopy(deps: Deps): Promise<void> {
  await deps.ledger.publish(COMPONENT, "other-batcher", { load: { sequences: 128, tokens: 1000 } }, new Date(deps.time.nowMs + 3_600_000));
}

function run(deps: Deps, delivered: number, topUpForMs = 60_000) {
  return processDelivery(deps, deps.queue.takeDelivery("llama-2-7b", delivered), { topUpUntil: new Date(deps.time.nowMs + topUpForMs) });
}

/** When (relative to `startMs`) and with what the batcher called `method` of `target`. */
function recordCalls<T extends object>(target: T, method: keyof T & string, deps: Deps, startMs: number): { at: number; args: unknown[] }[] {
  const calls: { at: number; args: unknown[] }[] = [];
  const original = (target[method] as (...args: unknown[]) => unknown).bind(target);
  (target as Record<string, unknown>)[method] = (...args: unknown[]) => {
    calls.push({ at: deps.time.nowMs - startMs, args });
    return original(...args);
  };
  return calls;
}

/** What this batcher published to the ledger (not the test's stand-in for another batcher). */
function recordPublishes(deps: Deps, startMs: number) {
  const published: { at: number; expiresInMs: number; load: number; oldestWaitingMs: number | undefined }[] = [];
  const publish = deps.ledger.publish.bind(deps.ledger);
  deps.ledger.publish = async (component, holder, entry, expiresAt) => {
    if (holder !== "other-batcher") {
      published.push({ at: deps.time.nowMs - startMs, expiresInMs: expiresAt.getTime() - deps.time.nowMs, load: entry.load.sequences, oldestWaitingMs: entry.oldestWaitingMs });
    }
    return publish(component, holder, entry, expiresAt);
  };
  return published;
}

/** One job, no top-up, and the copy's room all held by another batcher. */
async function oneJobAndNoRoom(): Promise<Deps> {
  const deps = await setup({ top_up: false });
  await submit(deps, 1);
  await othersHoldTheCopy(deps);
  return deps;
}

const gapsBetween = (instants: readonly number[]) => instants.slice(1).map((at, i) => at - (instants[i] as number));

describe("the batcher on FakeTime", () => {
  it("holds a static batch until its hold ends, then sends it whole", async () => {
    const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
    raw.components[COMPONENT].engine = "lmi-dynamic";
    const deps = await setup({ max_wait_ms: 2_000, latency_objective_ms: 30_000 }, buildRouteCatalog(raw));
    await submit(deps, 2);
    const startMs = deps.time.nowMs;
    const invokes = recordCalls(deps.invoker, "invoke", deps, startMs);
    const receives = recordCalls(deps.queue, "receive", deps, startMs);

    // One delivered; the top-up pulls the other, and with it an arrival rate worth holding for.
    await run(deps, 1);

    expect(deps.invoker.calls.map((c) => c.inputs.length)).toEqual([2]);
    // The hold ends max_wait_ms after the oldest job's submit; the loop notices within one tick.
    expect(invokes[0]?.at).toBeGreaterThanOrEqual(2_000);
    expect(invokes[0]?.at).toBeLessThan(2_100);
    // While it holds, each lane is asked again (without waiting) only after its empty answer's
    // backoff: 200 ms for the batch lane, 1 s for the interactive one (its own mapping delivers it).
    const emptyPolls = (lane: string) => receives.filter((r) => r.args[2] === 0 && r.args[3] === lane).slice(1).map((r) => r.at);
    expect(emptyPolls("batch").length).toBeGreaterThan(5);
    expect(gapsBetween(emptyPolls("batch")).every((gap) => gap === 200)).toBe(true);
    expect(emptyPolls("interactive").length).toBeGreaterThan(0);
    expect(gapsBetween(emptyPolls("interactive")).every((gap) => gap === 1000)).toBe(true);
  });

  it("re-reads the ledger every 100 ms while its jobs wait for room, every 500 ms otherwise, and publishes with a 30 s lease", async () => {
    const deps = await oneJobAndNoRoom();
    const startMs = deps.time.nowMs;
    const reads = recordCalls(deps.ledger, "others", deps, startMs);
    const published = recordPublishes(deps, startMs);
    // The other batcher's copy frees at 1 s; this batcher's call then runs for 3 s.
    void deps.time.sleep(1_000).then(() => deps.ledger.publish(COMPONENT, "other-batcher", { load: { sequences: 0, tokens: 0 } }, new Date(deps.time.nowMs + 60_000)));
    deps.invoker.gate = deps.time.sleep(4_000);

    await run(deps, 1);

    const readAt = reads.map((r) => r.at);
    expect(readAt.filter((at) => at <= 1_000)).toEqual(Array.from({ length: 11 }, (_, i) => i * LEDGER_REFRESH_WAITING_MS));
    const whileRunning = readAt.filter((at) => at >= 1_000);
    expect(whileRunning.length).toBeGreaterThan(4);
    expect(gapsBetween(whileRunning).every((gap) => gap === LEDGER_REFRESH_MS)).toBe(true);
    expect(published.every((p) => p.expiresInMs === LEDGER_TTL_MS)).toBe(true);
    expect(published.some((p) => p.at >= 1_000 && p.load === 1)).toBe(true);
    expect(published.at(-1)).toMatchObject({ at: 4_000, load: 0 });
  });

  it("puts jobs that found no room back once the top-up deadline and its 5 s grace have passed, not before", async () => {
    const deps = await oneJobAndNoRoom();
    const startMs = deps.time.nowMs;
    const requeues = recordCalls(deps.queue, "requeue", deps, startMs);

    const report = await run(deps, 1, 1_000);

    expect(report.retry).toEqual([]);
    expect(requeues.map((r) => r.at)).toEqual([1_000 + REQUEUE_GRACE_MS]);
    expect(deps.invoker.calls).toHaveLength(0);
    expect(deps.queue.visible).toHaveLength(1);
  });

  it("publishes when it got its oldest waiting job, not when the job was submitted", async () => {
    const deps = await setup({});
    // Batch work, which yields to the other batcher's older job and so waits.
    await submit(deps, 1, 1);
    const submittedMs = deps.time.nowMs;
    await deps.ledger.publish(COMPONENT, "other-batcher", { load: { sequences: 1, tokens: 1024 }, oldestWaitingMs: submittedMs - 5_000 }, new Date(submittedMs + 60_000));
    deps.time.advance(3_000);
    const receivedMs = deps.time.nowMs;
    const published = recordPublishes(deps, receivedMs);

    await run(deps, 1, -10_000);

    expect(deps.invoker.calls).toHaveLength(0);
    const oldestWaiting = published.map((p) => p.oldestWaitingMs);
    expect(oldestWaiting).toContain(receivedMs);
    expect(oldestWaiting).not.toContain(submittedMs);
  });
});

import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { cancelJob } from "#shared/app/cancel";
import { LEDGER_REFRESH_MS, LEDGER_REFRESH_WAITING_MS } from "#shared/app/batcher/ledger-sync";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { defaultRouteSettings, type RouteSettings } from "#shared/core/route-settings";
import { buildRouteCatalog, type EngineMode, type RouteCatalog } from "#shared/core/routes";
import type { InvokeOptions } from "#shared/ports";
import { memoryDeps } from "../../helpers/fakes.ts";

/** A cancelled running job's GPU call, on FakeTime: every instant below is virtual and exact. */
type Deps = ReturnType<typeof memoryDeps>;

/** The default catalog with `component`'s engine changed. */
function withEngine(component: string, engine: EngineMode): RouteCatalog {
  const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
  raw.components[component].engine = engine;
  return buildRouteCatalog(raw);
}

async function setup(route: string, patch: Partial<RouteSettings>, catalog?: RouteCatalog): Promise<Deps> {
  const deps = memoryDeps(catalog);
  const settings = deps.catalog.routes.get(route);
  if (!settings) throw new Error(`no route ${route}`);
  await deps.routeSettings.put(route, { ...defaultRouteSettings(settings), top_up: false, ...patch }, deps.clock.now());
  return deps;
}

/** Submits one job per prompt; their ids by prompt. */
async function submit(deps: Deps, model: string, prompts: readonly string[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const prompt of prompts) ids.set(prompt, (await submitJob(deps, "acme", { model, prompt, max_tokens: 8 })).job.job_id);
  return ids;
}

/**
 * Each GPU call as the invoker got it: when (from `startMs`), its prompts, and when its signal
 * aborted it. Calls wait for the returned gate, which the test opens.
 */
function recordCalls(deps: Deps, startMs: number) {
  const calls: { at: number; prompts: string[]; abortedAt?: number }[] = [];
  const invoke = deps.invoker.invoke.bind(deps.invoker);
  deps.invoker.invoke = (component, inputs, options: InvokeOptions = {}) => {
    const call: (typeof calls)[number] = { at: deps.time.nowMs - startMs, prompts: inputs.map((i) => i.prompt) };
    calls.push(call);
    options.signal?.addEventListener("abort", () => (call.abortedAt = deps.time.nowMs - startMs), { once: true });
    return invoke(component, inputs, options);
  };
  const gate = Promise.withResolvers<void>();
  deps.invoker.gate = gate.promise;
  return { calls, openGate: gate.resolve };
}

const run = (deps: Deps, route: string, delivered: number) =>
  processDelivery(deps, deps.queue.takeDelivery(route, delivered), { topUpUntil: new Date(deps.time.nowMs + 60_000) });

/** Runs `act` at `atMs` of virtual time. */
const at = (deps: Deps, atMs: number, act: () => unknown) => void deps.time.sleep(atMs).then(act);

describe("cancelling a running job on an engine that stops an aborted call (vllm-openai)", () => {
  it("aborts its call, frees its room within one ledger read, and settles its message with no result and no retry", async () => {
    // Prepare: room for two sequences (two copies, one each); the third job waits for room.
    const deps = await setup("llama-3-8b", { max_in_flight_per_copy: 1 });
    const ids = await submit(deps, "llama-3-8b", ["a", "b", "c"]);
    const { calls, openGate } = recordCalls(deps, deps.time.nowMs);
    // Between two of the reads a batcher makes every 100 ms while a job waits for room.
    const cancelAtMs = 1_050;
    at(deps, cancelAtMs, () => cancelJob(deps, "acme", ids.get(calls[0]?.prompts[0] ?? "") ?? ""));
    at(deps, 3_000, openGate);

    // Act
    const report = await run(deps, "llama-3-8b", 3);

    // Assess
    const [cancelled, other, waited] = calls;
    expect(calls.map((c) => c.at)).toEqual([0, 0, cancelled?.abortedAt]);
    const roomFreedAfterMs = (waited?.at ?? 0) - cancelAtMs;
    expect(roomFreedAfterMs).toBeGreaterThan(0);
    expect(roomFreedAfterMs).toBeLessThanOrEqual(LEDGER_REFRESH_WAITING_MS);
    expect(other?.abortedAt).toBeUndefined();
    const cancelledId = ids.get(cancelled?.prompts[0] ?? "") ?? "";
    expect(deps.jobs.jobs.get(cancelledId)).toMatchObject({ status: "CANCELLED", error: { code: "cancelled" } });
    expect(deps.jobs.finishes.map((f) => f.jobId).sort()).toEqual([ids.get(other?.prompts[0] ?? ""), ids.get(waited?.prompts[0] ?? "")].sort());
    expect(report.retry).toEqual([]);
    expect(deps.queue.visible).toEqual([]);
    expect(deps.ledger.marks.size).toBe(0);
  });

  it("frees the room within one 500 ms read when no job waits, and the batcher ends without waiting for the call's answer", async () => {
    // Prepare
    const deps = await setup("llama-3-8b", {});
    const ids = await submit(deps, "llama-3-8b", ["only"]);
    const startMs = deps.time.nowMs;
    const { calls, openGate } = recordCalls(deps, startMs);
    const published: { at: number; sequences: number }[] = [];
    const publish = deps.ledger.publish.bind(deps.ledger);
    deps.ledger.publish = (component, holder, entry, expiresAt) => {
      published.push({ at: deps.time.nowMs - startMs, sequences: entry.load.sequences });
      return publish(component, holder, entry, expiresAt);
    };
    const cancelAtMs = 1_050;
    at(deps, cancelAtMs, () => cancelJob(deps, "acme", ids.get("only") ?? ""));
    at(deps, 30_000, openGate);

    // Act
    const report = await run(deps, "llama-3-8b", 1);
    const endedAtMs = deps.time.nowMs - startMs;

    // Assess
    const abortedAt = calls[0]?.abortedAt ?? Number.NaN;
    expect(abortedAt - cancelAtMs).toBeGreaterThan(0);
    expect(abortedAt - cancelAtMs).toBeLessThanOrEqual(LEDGER_REFRESH_MS);
    expect(endedAtMs).toBe(abortedAt);
    expect(published.at(-1)).toEqual({ at: abortedAt, sequences: 0 });
    expect(report.retry).toEqual([]);
    expect(deps.jobs.finishes).toEqual([]);
  });
});

describe("a cancel mark on an engine that runs a started request to its end", () => {
  it.each([
    { engine: "lmi-rolling", prompts: ["a"] },
    { engine: "lmi-dynamic", prompts: ["a", "b"] },
  ] as const)("leaves the $engine call running, its room held until the engine answers, and drops only the cancelled job's result", async ({ engine, prompts }) => {
    // Prepare: a mark put there by hand (cancel writes none for these engines) while the call runs.
    const component = "llama-2-7b-ic";
    const deps = await setup("llama-2-7b", { max_wait_ms: 0 }, withEngine(component, engine));
    const ids = await submit(deps, "llama-2-7b", prompts);
    const { calls, openGate } = recordCalls(deps, deps.time.nowMs);
    const cancelled = ids.get("a") ?? "";
    at(deps, 1_050, async () => {
      await deps.jobs.endUnfinished(cancelled, { status: "CANCELLED", error: { code: "cancelled", message: "cancelled by request" } }, deps.clock.now());
      await deps.ledger.markCancelled(component, cancelled, new Date(deps.time.nowMs + 120_000));
    });
    at(deps, 3_000, openGate);

    // Act
    const report = await run(deps, "llama-2-7b", prompts.length);

    // Assess
    expect(calls.map((c) => c.prompts.length)).toEqual([prompts.length]);
    expect(calls[0]?.abortedAt).toBeUndefined();
    expect(deps.time.nowMs).toBeGreaterThanOrEqual(Date.parse("2026-11-27T12:00:03.000Z"));
    expect(deps.jobs.jobs.get(cancelled)?.status).toBe("CANCELLED");
    expect(deps.jobs.finishes.map((f) => f.jobId)).toEqual(prompts.slice(1).map((p) => ids.get(p)));
    expect(report.retry).toEqual([]);
  });
});

import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { staticBatchMs } from "#shared/core/latency-model";
import { DRIFT_MIN_SAMPLES } from "#shared/core/profile-drift";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { buildRouteCatalog, type Component } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { memoryDeps } from "../../helpers/fakes.ts";

/**
 * The batcher's packing on a GPU that runs slower than its profile: once its static batches have
 * shown the drift (core/profile-drift.ts), it packs with the corrected profile, so a batch the
 * profile says fits the invocation's time but the GPU would not finish in it is cut smaller.
 * End to end through a batcher run on FakeTime, the copy answering after its real pace.
 */
type Deps = ReturnType<typeof memoryDeps>;
const MODEL = "llama-2-7b";
const COMPONENT = "llama-2-7b-ic";
const counter = tokenCounter("llama2");
/** A prompt of 2,000 tokens (BOS and 1,999 words of one token each). */
const LONG_PROMPT = Array.from({ length: 1_999 }, () => "the").join(" ");

async function setup(): Promise<{ deps: Deps; component: Component }> {
  const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
  raw.components[COMPONENT].engine = "lmi-dynamic";
  const deps = memoryDeps(buildRouteCatalog(raw));
  const route = deps.catalog.routes.get(MODEL);
  const component = deps.catalog.components.get(COMPONENT);
  if (!route || !component) throw new Error("no default route");
  await deps.routeSettings.put(MODEL, { ...defaultRouteSettings(route), max_wait_ms: 0 }, deps.clock.now());
  return { deps, component };
}

/** The copy answers each call after `pace` times what the profile predicts for it. */
function copyAtPace(deps: Deps, component: Component, pace: number): void {
  const invoke = deps.invoker.invoke.bind(deps.invoker);
  deps.invoker.invoke = async (target, inputs, options) => {
    await deps.time.sleep(pace * staticBatchMs(component.latency, inputs.map((i) => ({ promptTokens: counter.countPrompt(i.prompt), newTokens: i.max_new_tokens }))));
    return invoke(target, inputs, options);
  };
}

/** Small jobs of distinct max_tokens (each its own static batch), then long ones that share one; the long ones' calls' sizes. */
async function runWith(pace: number): Promise<{ longCalls: number[]; predictedFirstMs: number }> {
  const { deps, component } = await setup();
  copyAtPace(deps, component, pace);
  for (let i = 0; i < DRIFT_MIN_SAMPLES + 2; i++) await submitJob(deps, "acme", { model: MODEL, prompt: "a short prompt", max_tokens: 64 + i });
  for (let i = 0; i < 40; i++) await submitJob(deps, "acme", { model: MODEL, prompt: LONG_PROMPT, max_tokens: 2048 });
  await processDelivery(deps, deps.queue.takeDelivery(MODEL, 1), { topUpUntil: new Date(deps.time.nowMs + 30 * 60_000) });
  const longCalls = deps.invoker.calls.filter((c) => c.inputs[0]?.max_new_tokens === 2048).map((c) => c.inputs.length);
  const first = longCalls[0] ?? 0;
  const predictedFirstMs = staticBatchMs(component.latency, Array.from({ length: first }, () => ({ promptTokens: 2_000, newTokens: 2048 })));
  return { longCalls, predictedFirstMs };
}

describe("the batcher's packing on a GPU slower than its profile", () => {
  it("packs with the corrected profile once its static batches showed a 30% slowdown: the long batch is cut to what the GPU finishes within the invocation", async () => {
    const limitMs = 60_000 * 0.8;

    const asProfiled = await runWith(1);
    const slow = await runWith(1.3);

    // At the profile's pace the KV budget bounds the batch; its predicted time fits, with the slowdown it would not.
    expect(asProfiled.longCalls.reduce((a, b) => a + b, 0)).toBe(40);
    expect(asProfiled.predictedFirstMs).toBeLessThanOrEqual(limitMs);
    expect(asProfiled.predictedFirstMs * 1.3).toBeGreaterThan(limitMs);
    // Slow, the batcher cut it to what fits at the corrected pace.
    expect(slow.longCalls.reduce((a, b) => a + b, 0)).toBe(40);
    expect(slow.longCalls[0]).toBeLessThan(asProfiled.longCalls[0] ?? 0);
    expect(slow.predictedFirstMs * 1.3).toBeLessThanOrEqual(limitMs);
  });
});

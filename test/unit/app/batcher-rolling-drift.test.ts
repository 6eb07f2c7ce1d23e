import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { estimateOf } from "#shared/app/waiting";
import { tokensPerCall } from "#shared/core/continuation";
import { correctedProfile, DRIFT_MIN_SAMPLES } from "#shared/core/profile-drift";
import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import type { Component } from "#shared/core/routes";
import { memoryDeps } from "../../helpers/fakes.ts";

/**
 * The batcher on a continuous-batching route (Llama-3.1-8B, vLLM, two copies) whose copies run
 * slower than the profile: each call answers after `pace` times what the latency model gives for
 * its prefill and its decode steps at the copies' load, on FakeTime. Its calls' drift
 * (core/component-drift.ts) must correct the profile, be stored beside the capacity ledger, and
 * be what the next batcher invocation plans and estimates with before it has timed anything.
 */
type Deps = ReturnType<typeof memoryDeps>;
const ROUTE = "llama-3-8b";
const COMPONENT = "llama-3-8b-ic";
const MAX_TOKENS = 300;
/** The prompts' tokens, as Llama 3's tokenizer counts them (BOS included): what the copies' timing reads. */
const PROMPT_TOKENS = 10;

function component(deps: Deps): Component {
  const found = deps.catalog.components.get(COMPONENT);
  if (!found) throw new Error(`no ${COMPONENT}`);
  return found;
}

/** The copies' pace against the profile, and the sequences each runs beside a call (the test's load). */
type Pace = { times: number; perCopy: number };

/** Each call answers after `pace.times` the model's time for it beside `pace.perCopy` sequences like it on its copy. */
function copiesAt(deps: Deps, pace: Pace, promptTokens: number): void {
  const { latency } = component(deps);
  const invoke = deps.invoker.invoke.bind(deps.invoker);
  deps.invoker.invoke = async (target, inputs, options) => {
    const n = Math.max(...inputs.map((i) => i.max_new_tokens));
    const { times, perCopy } = pace;
    await deps.time.sleep(times * (prefillMs(latency, promptTokens) + (n - 1) * decodeStepMs(latency, perCopy, perCopy * (promptTokens + n / 2))));
    return invoke(target, inputs, options);
  };
}

/** Counts the drift stores: the requests the drift adds. */
function countStores(deps: Deps): { stores: number } {
  const counted = { stores: 0 };
  const save = deps.ledger.saveDrift.bind(deps.ledger);
  deps.ledger.saveDrift = async (...args) => {
    counted.stores++;
    return save(...args);
  };
  return counted;
}

/** `jobs` jobs at once (spread over the two copies), through one batcher invocation; their prompt tokens. */
async function runJobs(deps: Deps, jobs: number): Promise<number> {
  let promptTokens = 0;
  for (let i = 0; i < jobs; i++) promptTokens = (await submitJob(deps, "acme", { model: ROUTE, prompt: `Tell a story about the number ${i % 10}.`, max_tokens: MAX_TOKENS })).job.prompt_tokens;
  await processDelivery(deps, deps.queue.takeDelivery(ROUTE, jobs), { topUpUntil: new Date(deps.time.nowMs + 10 * 60_000) });
  return promptTokens;
}

describe("the batcher's profile drift on a continuous-batching route", () => {
  it("corrects the decode step of copies 40% slower than the profile, stores it for the next invocation in a write or two (not one a job), and the next one plans and estimates with it from its start", async () => {
    // Prepare
    const deps = memoryDeps();
    const stored = countStores(deps);
    const pace = { times: 1.4, perCopy: 8 };
    copiesAt(deps, pace, PROMPT_TOKENS);
    expect(await runJobs(deps, 16)).toBe(PROMPT_TOKENS);
    const storedByFirst = stored.stores;

    // Act: a new invocation, one job, at the profile's own pace (one sample moves nothing).
    pace.times = 1;
    pace.perCopy = 1;
    const waiting = (await submitJob(deps, "acme", { model: ROUTE, prompt: "Tell a story about the number 1.", max_tokens: MAX_TOKENS })).job;
    await processDelivery(deps, deps.queue.takeDelivery(ROUTE, 1), { topUpUntil: new Date(deps.time.nowMs + 60_000) });

    // Assess
    const drift = await deps.ledger.drift(COMPONENT, new Date(deps.time.nowMs));
    expect(drift?.decode.logRatios).toHaveLength(16);
    expect(drift?.decode.factor).toBeCloseTo(1.4, 1);
    expect(drift?.prefill.factor).toBe(1);
    // One store as the factor changed and at most one as the run ended, not one a job; the next invocation's sample, one as it ended.
    expect(storedByFirst).toBeGreaterThanOrEqual(1);
    expect(storedByFirst).toBeLessThanOrEqual(2);
    expect(stored.stores).toBe(storedByFirst + 1);
    const board = await deps.queueBoard.read(ROUTE);
    expect(board.service?.profileFactors?.decode).toBeCloseTo(1.4, 1);
    // A job waiting now is estimated at the corrected pace: its finish 40% further than the profile's.
    const profileBoard = { ...board, service: board.service && { ...board.service, profileFactors: undefined } };
    const asStored = { ...waiting, status: "QUEUED" as const };
    const corrected = estimateOf(deps, asStored, board);
    const uncorrected = estimateOf(deps, asStored, profileBoard);
    const runMs = (e: typeof corrected) => Date.parse(e?.estimated_finish_at ?? "") - Date.parse(e?.estimated_start_at ?? "");
    expect(runMs(corrected) / runMs(uncorrected)).toBeGreaterThan(1.3);
  });

  it("plans a long generation's calls on the corrected profile: fewer tokens a call on copies 40% slower, so that each still fits the invocation", async () => {
    // Prepare: an invocation corrected the profile to 1.4.
    const deps = memoryDeps();
    const pace = { times: 1.4, perCopy: 8 };
    copiesAt(deps, pace, PROMPT_TOKENS);
    await runJobs(deps, 16);
    const before = deps.invoker.calls.length;
    const { latency } = component(deps);
    const factors = await deps.ledger.drift(COMPONENT, new Date(deps.time.nowMs));
    const corrected = { ...component(deps), latency: correctedProfile(latency, { decode: factors?.decode.factor ?? 1, prefill: factors?.prefill.factor ?? 1 }) };

    // Act: the next invocation runs a job longer than one call.
    pace.perCopy = 1;
    const { job } = await submitJob(deps, "acme", { model: ROUTE, prompt: "A long story.", max_tokens: 4_000 });
    await processDelivery(deps, deps.queue.takeDelivery(ROUTE, 1), { topUpUntil: new Date(deps.time.nowMs + 10 * 60_000) });

    // Assess
    const asked = deps.invoker.calls.slice(before).map((c) => c.inputs[0]?.max_new_tokens);
    const context = job.prompt_tokens + 4_000;
    expect(tokensPerCall(corrected.latency, corrected, context)).toBeLessThan(tokensPerCall(latency, component(deps), context));
    expect(asked[0]).toBe(tokensPerCall(corrected.latency, corrected, context));
    expect(deps.jobs.jobs.get(job.job_id)?.result?.completion_tokens).toBe(4_000);
  });

  it("leaves the profile as it is on copies at its pace: no correction, nothing reported", async () => {
    // Prepare
    const deps = memoryDeps();
    copiesAt(deps, { times: 1, perCopy: 8 }, PROMPT_TOKENS);

    // Act
    await runJobs(deps, 16);
    await runJobs(deps, 16);

    // Assess
    const drift = await deps.ledger.drift(COMPONENT, new Date(deps.time.nowMs));
    expect(drift?.decode.logRatios.length).toBeGreaterThanOrEqual(DRIFT_MIN_SAMPLES);
    expect(drift?.decode.factor).toBe(1);
    expect(drift?.prefill.factor).toBe(1);
    expect((await deps.queueBoard.read(ROUTE)).service?.profileFactors).toBeUndefined();
  });
});

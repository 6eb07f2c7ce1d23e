import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { submitJob } from "#shared/app/submit";
import { copyUsdPerSecond, type JobBreakdown } from "#shared/core/job-breakdown";
import type { JobRecord } from "#shared/core/jobs";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { buildRouteCatalog } from "#shared/core/routes";
import { runBatcher } from "../../helpers/batcher.ts";
import { memoryDeps } from "../../helpers/fakes.ts";

/** The breakdown each job gets from the batcher, on FakeTime: GPU calls take virtual time, exactly. */
type Deps = ReturnType<typeof memoryDeps>;
const COMPONENT = "llama-2-7b-ic";
/** Each call answers after 10 virtual ms per token asked for (the longest of its prompts). */
const MS_PER_TOKEN = 10;

function timedCalls(deps: Deps): void {
  const invoke = deps.invoker.invoke.bind(deps.invoker);
  deps.invoker.invoke = async (component, inputs, options) => {
    await deps.time.sleep(MS_PER_TOKEN * Math.max(...inputs.map((i) => i.max_new_tokens)));
    return invoke(component, inputs, options);
  };
}

async function submit(deps: Deps, maxTokens: readonly number[]): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  for (const [i, max_tokens] of maxTokens.entries()) jobs.push((await submitJob(deps, "acme", { model: "llama-2-7b", prompt: `prompt ${i}`, max_tokens })).job);
  return jobs;
}

function breakdownsOf(deps: Deps, jobs: readonly JobRecord[]): JobBreakdown[] {
  return jobs.map((job) => {
    const breakdown = deps.jobs.jobs.get(job.job_id)?.breakdown;
    if (!breakdown) throw new Error(`job ${job.job_id} has no breakdown`);
    return breakdown;
  });
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const copyUsdPerS = (deps: Deps) => copyUsdPerSecond(deps.catalog.components.get(COMPONENT) ?? (undefined as never));

describe("the batcher's breakdown on a rolling-batch engine", () => {
  it("gives every job its waits, its call, its GPU batch, and shares that add up to the copy's cost while it was busy", async () => {
    // Prepare: six jobs of one GPU batch, each its own call, side by side on the one copy.
    const deps = memoryDeps();
    timedCalls(deps);
    const maxTokens = [8, 16, 32, 64, 128, 256];
    const jobs = await submit(deps, maxTokens);
    deps.time.advance(2_000);

    // Act
    await runBatcher(deps);

    // Assess
    const breakdowns = breakdownsOf(deps, jobs);
    const batchId = breakdowns[0]?.gpu_batch.id;
    expect(breakdowns.map((b) => b.gpu_ms)).toEqual(maxTokens.map((t) => t * MS_PER_TOKEN));
    for (const [i, b] of breakdowns.entries()) {
      expect(b).toMatchObject({
        gpu_batch: { id: batchId, sequences: 6, kv_tokens: sum(jobs.map((j) => j.prompt_tokens)) + sum(maxTokens) },
        component: COMPONENT,
        copy: { id: null, gpus: 1 },
        attempts: 1,
        prompt_tokens: jobs[i]?.prompt_tokens,
        generated_tokens: maxTokens[i],
        cost: { rule: "rolling-share" },
      });
      expect(b.queue_wait_ms).toBeGreaterThanOrEqual(2_000);
      expect(b.batcher_hold_ms).toBeGreaterThanOrEqual(0);
      expect(b.batcher_hold_ms).toBeLessThanOrEqual(b.queue_wait_ms);
    }
    // The copy was busy from the batch's start to its longest call's answer; the shares add up to that.
    const busySeconds = (Math.max(...maxTokens) * MS_PER_TOKEN) / 1000;
    expect(sum(breakdowns.map((b) => b.cost.usd))).toBeCloseTo(copyUsdPerS(deps) * busySeconds, 12);
    // The shortest ran beside all six the whole time: a sixth of the copy.
    expect(breakdowns[0]?.cost.usd).toBeCloseTo((copyUsdPerS(deps) * 0.08) / 6, 12);
  });

  it("shares the copy with another batcher's sequences, as the capacity ledger says", async () => {
    // Prepare: another batcher holds 3 sequences on the copy all along.
    const deps = memoryDeps();
    timedCalls(deps);
    await deps.ledger.publish(COMPONENT, "other-batcher", { load: { sequences: 3, tokens: 300 } }, new Date(deps.time.nowMs + 3_600_000));
    const jobs = await submit(deps, [100]);

    // Act
    await runBatcher(deps);

    // Assess: one second beside three others, a quarter of the copy.
    const [breakdown] = breakdownsOf(deps, jobs);
    expect(breakdown?.gpu_ms).toBe(1_000);
    expect(breakdown?.cost.usd).toBeCloseTo(copyUsdPerS(deps) / 4, 12);
  });

  it("keeps the queue wait to the first claim when another attempt runs the job, and counts the attempts", async () => {
    // Prepare: a first batcher claimed the job 1 s after its submit and stalled; its message comes back.
    const deps = memoryDeps();
    const [job] = await submit(deps, [8]);
    deps.time.advance(1_000);
    await deps.jobs.claim(job!.job_id, { gpu_batch_id: "gpu-stalled", gpu_batch_size: 1, component: COMPONENT }, deps.clock.now());
    deps.time.advance(30_000);

    // Act
    await runBatcher(deps);

    // Assess
    const [breakdown] = breakdownsOf(deps, [job!]);
    expect(breakdown).toMatchObject({ queue_wait_ms: 1_000, attempts: 2 });
    expect(breakdown?.gpu_batch.id).not.toBe("gpu-stalled");
  });
});

describe("the batcher's breakdown on a dynamic-batch engine", () => {
  it("splits a static batch's call equally: the jobs' shares add up to price × the call's time", async () => {
    // Prepare
    const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
    raw.components[COMPONENT].engine = "lmi-dynamic";
    const deps = memoryDeps(buildRouteCatalog(raw));
    const route = deps.catalog.routes.get("llama-2-7b");
    await deps.routeSettings.put("llama-2-7b", { ...defaultRouteSettings(route!), dispatch: "immediate" }, deps.clock.now());
    timedCalls(deps);
    const jobs = await submit(deps, [8, 8, 8, 8, 8]);

    // Act
    await runBatcher(deps);

    // Assess
    expect(deps.invoker.calls).toHaveLength(1);
    const breakdowns = breakdownsOf(deps, jobs);
    for (const b of breakdowns) expect(b).toMatchObject({ gpu_ms: 80, gpu_batch: { sequences: 5 }, cost: { rule: "static-batch" } });
    expect(new Set(breakdowns.map((b) => b.gpu_batch.id)).size).toBe(1);
    expect(sum(breakdowns.map((b) => b.cost.usd))).toBeCloseTo(copyUsdPerS(deps) * 0.08, 12);
  });
});

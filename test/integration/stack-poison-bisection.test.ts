import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "#local/stack";
import { pollUntil } from "../helpers/local-aws.ts";
import { componentIn, startRoutesStack, type RoutesStack } from "../helpers/routes-stack.ts";

/**
 * Poison bisection through the whole pipeline on the embedded stack (real SDK, real servers): a
 * batch file of 64 jobs on a dynamic-batch engine, 2 of whose prompts the container refuses (the
 * emulator's reject_prompts_containing), each static batch refused whole. The bad jobs fail alone
 * with the model's message, the 62 others succeed, each written once (attempt 1), and the calls
 * to SageMaker stay within the bisection's bound for the static batches the batcher formed.
 */
const model = "llama-2-7b";
const component = "llama-2-7b-ic";
const MARKER = "<<poison>>";
const BAD = new Set([7, 40]);

let running: RoutesStack;
let stack: Stack;
let api: RoutesStack["api"];

beforeAll(async () => {
  running = await startRoutesStack("itpoison", (raw) => {
    componentIn(raw, component)["engine"] = "lmi-dynamic";
  }, { autoscaling: false });
  ({ stack, api } = running);
});

afterAll(async () => {
  await running?.stop();
});

describe("poison bisection through the pipeline", () => {
  it("fails only the bad prompts of a 64-job batch, runs the others once, within log2 calls per bad prompt", { timeout: 180_000 }, async () => {
    // Prepare
    const emulator = stack.sagemaker;
    if (!emulator) throw new Error("the stack runs no SageMaker emulator");
    const faults = await fetch(`${emulator.url}/_emulator/faults`, { method: "POST", body: JSON.stringify({ reject_prompts_containing: MARKER, components: [component] }) });
    expect(faults.status).toBe(200);
    // Hold static batches up to 5 s, so that the 64 jobs run in few, large ones.
    expect((await api("PUT", `/v1/routes/${model}/settings`, { max_wait_ms: 5_000, latency_objective_ms: 600_000 })).status).toBe(200);
    const lines = Array.from({ length: 64 }, (_, i) => JSON.stringify({ custom_id: `c${i}`, body: { model, prompt: BAD.has(i) ? `Prompt ${i} ${MARKER}` : `Prompt ${i}`, max_tokens: 4 } }));

    // Act
    const submitted = await api("POST", "/v1/batches", lines.join("\n"));
    const batchId: string = submitted.json.batch_id;
    const results = await pollUntil(async () => {
      const page = await fetch(`${stack.endpoints.http}/v1/batches/${batchId}/results`, { headers: { authorization: `Bearer ${stack.apiKey}` } });
      const done = (await page.text()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as { custom_id: string; job_id: string; status: string });
      return done.length === 64 && done.every((r) => r.status !== "QUEUED" && r.status !== "RUNNING") ? done : undefined;
    }, "the batch's 64 jobs to end", 150_000);
    const jobs = await Promise.all(results.map((r) => api("GET", `/v1/jobs/${r.job_id}`).then((j) => ({ ...j.json, custom_id: r.custom_id }))));

    // Assess
    expect(submitted.status).toBe(202);
    const index = (job: { custom_id: string }) => Number(job.custom_id.slice(1));
    const bad = jobs.filter((j) => BAD.has(index(j)));
    const good = jobs.filter((j) => !BAD.has(index(j)));
    for (const j of bad) expect(j).toMatchObject({ status: "FAILED", error: { code: "model_error" } });
    for (const j of bad) expect(j.error.message).toContain("reject_prompts_containing");
    for (const j of good) expect(j).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: 4 } });
    // Each job claimed and written once: no retry, no second attempt. (At real time: with the GPU
    // 20 times faster, the 60 s invocation timeout is 3 s of wall time, which a loaded machine
    // can pass while the halves of a batch wait behind each other, and the job is retried.)
    expect(jobs.filter((j) => j.breakdown?.attempts !== 1).map((j) => j.custom_id)).toEqual([]);
    // The static batches the batcher sent, and what bisection may cost on each.
    const batches = new Map<string, { size: number; bad: number }>();
    for (const j of jobs) {
      const id: string = j.gpu_batch.gpu_batch_id;
      const seen = batches.get(id) ?? { size: 0, bad: 0 };
      batches.set(id, { size: seen.size + 1, bad: seen.bad + (BAD.has(index(j)) ? 1 : 0) });
    }
    const bound = [...batches.values()].reduce((sum, b) => sum + (b.bad === 0 ? 1 : 1 + 2 * b.bad * Math.ceil(Math.log2(b.size))), 0);
    const before = [...batches.values()].reduce((sum, b) => sum + (b.bad === 0 ? 1 : 1 + b.size), 0);
    const stats = emulator.stats().components.find((c) => c.component === component);
    const calls = (stats?.invocations ?? 0) + (stats?.invocationModelErrors ?? 0);
    expect(stats?.invocationModelErrors).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(bound);
    // One run on the loaded 2-core machine: 2 static batches (34 with both bad prompts, 30), 20 calls; bound 26, one call a prompt 36.
    console.log(`poison bisection e2e: ${batches.size} static batches (${[...batches.values()].map((b) => `${b.size}/${b.bad} bad`).join(", ")}), ${calls} calls; bound ${bound}, one call a prompt ${before}`);
  });
});

import { loadavg } from "node:os";
import { batchJobsUnderCap } from "#shared/core/batch-lane-cap";
import { demandOf } from "#shared/core/gpu-batch-policy";
import { gpuSnapshot } from "./gpu.ts";
import { nearest } from "./gpu-sampler.ts";
import { batchDrain, interactiveRun, LANES_SCENARIO, type LanesReport } from "./lanes-summary.ts";
import { admissionLimit } from "./metrics.ts";
import type { Outcome } from "./outcome.ts";
import { drivePipeline, type PipelineTarget } from "./pipeline-driver.ts";
import { type InvocationLog, invocationLog } from "./phases.ts";
import type { PolicyStack } from "./policy-stack.ts";
import type { PromptBook } from "./prompts.ts";
import type { Mode } from "./scenarios.ts";
import { generateTrace, offeredRpm, type TraceRequest, type TraceSpec } from "./trace.ts";
import { predictLanes } from "./prediction.ts";
import { gpuOverWindow, withGpuSamples } from "./run.ts";

export { LANES_SCENARIO } from "./lanes-summary.ts";

/**
 * Issue 12 item 3: a large batch file draining while interactive jobs arrive. The batch's lines
 * carry no priority (batch lane), the interactive jobs are lone POST /v1/jobs without one
 * (interactive lane). The same interactive trace runs first on the idle stack: its reference.
 */
export type LanesPlan = {
  readonly batchJobs: number;
  /**
   * Lines per batch file: 2,000 lines of 512-token prompts are about 5 MB, and one file of 20,000
   * (about 54 MB) is past API Gateway's 10 MB payload limit, so the full batch goes in as files of
   * this size, one after another, into the same batch-lane queue.
   */
  readonly linesPerFile: number;
  readonly batchPromptTokens: number;
  readonly batchMaxTokens: number;
  readonly interactive: TraceSpec;
  /** How long after the last interactive arrival the bench waits for answers. */
  readonly drainMs: number;
  /** How long the batch may take to fill the copy before the interactive trace starts. */
  readonly fillTimeoutMs: number;
};

export function lanesPlan(mode: Mode, seed: number): LanesPlan {
  const quick = mode === "quick";
  return {
    batchJobs: quick ? 2_000 : 20_000,
    linesPerFile: 2_000,
    batchPromptTokens: 512,
    batchMaxTokens: 512,
    // Long enough for a p95 over 100+ jobs; short enough that a quick batch of 2,000 outlasts it
    // (about 1,000 batch jobs drain in 120 s).
    interactive: { seed: seed + 6, durationMs: quick ? 120_000 : 300_000, arrivals: { kind: "poisson", rpm: 60 }, lengths: { kind: "fixed", promptTokens: 512, maxTokens: 512 } },
    drainMs: 30_000,
    fillTimeoutMs: quick ? 120_000 : 600_000,
  };
}

const TITLE = (plan: LanesPlan) =>
  `a ${plan.batchJobs.toLocaleString("en")}-job batch file (${plan.batchPromptTokens}+${plan.batchMaxTokens}, batch lane) draining while lone jobs arrive at 60/min (Poisson, 512+512, interactive lane)`;

async function api(target: PipelineTarget, method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${target.http}${path}`, { method, headers: { authorization: `Bearer ${target.apiKey}`, "content-type": "application/json" }, body });
  return { status: response.status, text: await response.text() };
}

async function submitBatchFiles(target: PipelineTarget, plan: LanesPlan, prompts: PromptBook): Promise<string[]> {
  const ids: string[] = [];
  for (let first = 0; first < plan.batchJobs; first += plan.linesPerFile) {
    const count = Math.min(plan.linesPerFile, plan.batchJobs - first);
    const lines = Array.from({ length: count }, (_, i) =>
      JSON.stringify({ custom_id: `b${first + i}`, body: { model: target.model, prompt: prompts.prompt(plan.batchPromptTokens, first + i), max_tokens: plan.batchMaxTokens } }),
    );
    const answer = await api(target, "POST", "/v1/batches", lines.join("\n"));
    if (answer.status !== 202) throw new Error(`POST /v1/batches: ${answer.status} ${answer.text.slice(0, 200)}`);
    ids.push((JSON.parse(answer.text) as { batch_id: string }).batch_id);
  }
  return ids;
}

async function waitUntilFull(stack: PolicyStack, limit: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while ((await gpuSnapshot(stack.sagemakerUrl, stack.component.name)).outstanding < limit) {
    if (performance.now() > deadline) throw new Error(`the batch did not fill the copy (${limit} sequences) within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function succeededOf(target: PipelineTarget, batchIds: readonly string[]): Promise<number | null> {
  let total = 0;
  for (const id of batchIds) {
    const answer = await api(target, "GET", `/v1/batches/${id}`);
    if (answer.status !== 200) return null;
    total += (JSON.parse(answer.text) as { request_counts: { succeeded: number } }).request_counts.succeeded;
  }
  return total;
}

async function runInteractive(stack: PolicyStack, trace: readonly TraceRequest[], plan: LanesPlan, prompts: PromptBook) {
  const { result, gpu } = await withGpuSamples(stack.sagemakerUrl, stack.component.name, () =>
    drivePipeline(stack.target, trace, { prompts, untilMs: plan.interactive.durationMs + plan.drainMs }),
  );
  const whole = gpuOverWindow(gpu, result.originMs, result.originMs + result.endMs);
  return { ...result, gpu, summary: interactiveRun(result.outcomes, result.endMs, whole, loadavg()[0] ?? 0) };
}

const unanswered = (outcomes: readonly Outcome[]) => outcomes.flatMap((o) => (o.status === "unfinished" && o.jobId !== undefined ? [o.jobId] : []));

/**
 * The idle reference, then the batch and the same trace beside it, on (d)'s stack. Run last on
 * that stack: the batch's remaining jobs are abandoned with it rather than cancelled one by one.
 */
export async function runLanes(
  stack: PolicyStack,
  plan: LanesPlan,
  context: { readonly engineTokensPerS: number; readonly prompts: PromptBook; readonly log: (line: string) => void },
): Promise<{ report: LanesReport; batcher: InvocationLog; outcomes: ReadonlyMap<string, readonly Outcome[]> }> {
  const { log, prompts } = context;
  const trace = generateTrace(plan.interactive);
  const limit = admissionLimit(stack.component.limits, plan.batchPromptTokens + plan.batchMaxTokens) * Math.max(1, stack.component.copies);

  log(`${LANES_SCENARIO}: the interactive trace alone (${trace.length} jobs over ${plan.interactive.durationMs / 1000} s), the idle reference`);
  const idle = await runInteractive(stack, trace, plan, prompts);
  if (idle.outcomes.some((o) => o.status === "unfinished")) await stack.settle(unanswered(idle.outcomes), 120_000);

  log(`${LANES_SCENARIO}: submitting ${plan.batchJobs} batch jobs`);
  const submitStart = performance.now();
  const batchIds = await submitBatchFiles(stack.target, plan, prompts);
  const acceptedAfterS = (performance.now() - submitStart) / 1000;
  await waitUntilFull(stack, limit, plan.fillTimeoutMs);
  const filledAfterS = (performance.now() - submitStart) / 1000;
  log(`${LANES_SCENARIO}: ${batchIds.length} files accepted in ${acceptedAfterS.toFixed(1)} s, the copy full after ${filledAfterS.toFixed(1)} s; the same trace beside it`);
  const under = await runInteractive(stack, trace, plan, prompts);

  const window = gpuOverWindow(under.gpu, under.originMs, under.originMs + plan.interactive.durationMs);
  const inWindow = under.gpu.filter((g) => g.atMs >= under.originMs && g.atMs <= under.originMs + plan.interactive.durationMs);
  const minOutstanding = Math.min(...(inWindow.length > 0 ? inWindow : [nearest(under.gpu, under.originMs)].filter((g) => g !== undefined)).map((g) => g.outstanding));
  const succeeded = await succeededOf(stack.target, batchIds).catch(() => null);
  const drain = batchDrain({
    fromMs: 0,
    toMs: plan.interactive.durationMs,
    gpuTokens: window.tokens,
    simMs: window.simMs,
    interactive: under.outcomes,
    engineTokensPerS: context.engineTokensPerS,
    batchMaxTokens: plan.batchMaxTokens,
    minOutstanding,
    admissionLimit: limit,
    batchLeftAtEnd: succeeded === null ? null : plan.batchJobs - succeeded,
    cap: {
      slowdownPercent: stack.settings.interactive_slowdown_percent,
      batchSequences: batchJobsUnderCap(
        stack.component,
        demandOf({ promptTokens: plan.batchPromptTokens, maxNewTokens: plan.batchMaxTokens }, stack.component.kv_admission),
        stack.settings.interactive_slowdown_percent,
      ),
      stepMs: under.summary.ms_per_token_p50,
    },
  });
  const batcher = invocationLog(stack, under.originMs);
  await stack.abandon();
  const report: LanesReport = {
    name: LANES_SCENARIO,
    title: TITLE(plan),
    seed: plan.interactive.seed,
    batch: {
      jobs: plan.batchJobs,
      files: batchIds.length,
      prompt_tokens: plan.batchPromptTokens,
      max_tokens: plan.batchMaxTokens,
      accepted_after_s: acceptedAfterS,
      filled_after_s: filledAfterS,
      succeeded_by_end: succeeded,
      gpu_busy: window.busyFraction,
      copy_outstanding: under.gpu.map((g) => [Math.round((g.atMs - under.originMs) / 100) / 10, g.outstanding] as const),
    },
    interactive: { rpm: offeredRpm(plan.interactive.arrivals, plan.interactive.durationMs), duration_s: plan.interactive.durationMs / 1000, requests: trace.length, prompt_tokens: trace[0]?.promptTokens ?? 0, max_tokens: trace[0]?.maxTokens ?? 0 },
    idle: idle.summary,
    under_batch: under.summary,
    drain,
    p95_ratio: under.summary.p95_ms / idle.summary.p95_ms,
    prediction: predictLanes(stack, plan, trace, { idleP95Ms: idle.summary.p95_ms, besideP95Ms: under.summary.p95_ms, drainRpm: drain.drain_rpm, filledAfterMs: (filledAfterS - acceptedAfterS) * 1000 }),
  };
  log(`  idle p95 ${(report.idle.p95_ms / 1000).toFixed(2)} s, beside the batch ${(report.under_batch.p95_ms / 1000).toFixed(2)} s; batch ${drain.drain_rpm.toFixed(1)} of ${drain.capacity_left_rpm.toFixed(1)} jobs/min left`);
  const p = report.prediction;
  if (p) log(`  predicted: idle p95 ${(p.idle_p95_ms / 1000).toFixed(2)} s, beside ${(p.p95_ms / 1000).toFixed(2)} s, batch ${p.throughput_rpm.toFixed(1)} jobs/min`);
  return { report, batcher, outcomes: new Map([["idle", idle.outcomes], ["beside the batch", under.outcomes]]) };
}

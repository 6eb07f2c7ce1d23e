import { loadavg } from "node:os";
import { batchJobsUnderCap } from "#shared/core/batch-lane-cap";
import { demandOf } from "#shared/core/gpu-batch-policy";
import { nearest } from "./gpu-sampler.ts";
import { capacityAtInteractiveBound } from "./lanes-capacity.ts";
import { batchDrain, interactiveRun, LANES_P95_BOUND, LANES_SCENARIO, type LanesReport } from "./lanes-summary.ts";
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
 * (interactive lane). The interactive trace runs first on the idle stack, its reference; then
 * again, and the batch is submitted while it flows, `batchAfterMs` into it, as a batch file lands
 * on a route that serves people. Both targets are measured over what follows the batch's last file
 * being accepted: the interactive jobs that arrived after it, against the same jobs of the idle run.
 */
export type LanesPlan = {
  readonly batchJobs: number;
  /**
   * Lines per batch file: one file of 20,000 lines of 512-token prompts (about 54 MB) is past API
   * Gateway's 10 MB payload limit, so the batch goes in as files of this size, one after another,
   * into the same batch-lane queue. 500 (about 1.3 MB): a file of 2,000 submitted while the
   * interactive trace ran on the loaded 2-core machine outlasted the API's 30 s (a 504).
   */
  readonly linesPerFile: number;
  readonly batchPromptTokens: number;
  readonly batchMaxTokens: number;
  readonly interactive: TraceSpec;
  /** When into the interactive trace the batch is submitted. */
  readonly batchAfterMs: number;
  /** How long after the last interactive arrival the bench waits for answers. */
  readonly drainMs: number;
};

export function lanesPlan(mode: Mode, seed: number): LanesPlan {
  const quick = mode === "quick";
  return {
    batchJobs: quick ? 2_000 : 20_000,
    linesPerFile: 500,
    batchPromptTokens: 512,
    batchMaxTokens: 512,
    // Long enough for a p95 over 100+ jobs after the batch is in (quick: its 4 files take 10-40 s
    // to be accepted here; full: its 40 files several minutes); the batch outlasts it (beside
    // interactive work the batch lane drains 60-200 jobs a minute).
    interactive: { seed: seed + 6, durationMs: quick ? 160_000 : 600_000, arrivals: { kind: "poisson", rpm: 60 }, lengths: { kind: "fixed", promptTokens: 512, maxTokens: 512 } },
    batchAfterMs: 20_000,
    drainMs: 30_000,
  };
}

const TITLE = (plan: LanesPlan) =>
  `a ${plan.batchJobs.toLocaleString("en")}-job batch file (${plan.batchPromptTokens}+${plan.batchMaxTokens}, batch lane) draining while lone jobs arrive at 60/min (Poisson, 512+512, interactive lane)`;

export async function api(target: PipelineTarget, method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
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
    ids.push(await submitFile(target, lines.join("\n")));
  }
  return ids;
}

/**
 * One file, sent again when the API did not accept it (a 504 from a submit function starved of
 * CPU on the loaded machine): the bench follows only the batch it accepted.
 */
export async function submitFile(target: PipelineTarget, text: string, tries = 3): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const answer = await api(target, "POST", "/v1/batches", text);
    if (answer.status === 202) return (JSON.parse(answer.text) as { batch_id: string }).batch_id;
    if (attempt >= tries || (answer.status >= 400 && answer.status < 500)) throw new Error(`POST /v1/batches: ${answer.status} ${answer.text.slice(0, 200)}`);
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

/** The interactive trace through the pipeline, the GPU sampled; `beside` runs as it starts and is awaited with it. */
async function runInteractive<T>(stack: PolicyStack, trace: readonly TraceRequest[], plan: LanesPlan, prompts: PromptBook, beside: () => Promise<T>) {
  const [{ result, gpu }, besideResult] = await Promise.all([
    withGpuSamples(stack.sagemakerUrl, stack.component.name, () => drivePipeline(stack.target, trace, { prompts, untilMs: plan.interactive.durationMs + plan.drainMs })),
    beside(),
  ]);
  return { ...result, gpu, beside: besideResult };
}

const unanswered = (outcomes: readonly Outcome[]) => outcomes.flatMap((o) => (o.status === "unfinished" && o.jobId !== undefined ? [o.jobId] : []));

/**
 * The idle reference, then the same trace with the batch landing in it, on (d)'s stack. Run last on
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
  const endMs = plan.interactive.durationMs;

  // The scenarios before it may leave work on the copy: the reference starts on an empty one.
  await stack.settle([], 180_000);
  log(`${LANES_SCENARIO}: the interactive trace alone (${trace.length} jobs over ${endMs / 1000} s), the idle reference`);
  const idle = await runInteractive(stack, trace, plan, prompts, async () => undefined);
  await stack.settle(unanswered(idle.outcomes), 120_000);

  log(`${LANES_SCENARIO}: the same trace again, ${plan.batchJobs} batch jobs submitted ${plan.batchAfterMs / 1000} s into it`);
  const traceStart = performance.now();
  const under = await runInteractive(stack, trace, plan, prompts, async () => {
    await new Promise((resolve) => setTimeout(resolve, plan.batchAfterMs));
    const submitted = performance.now();
    const ids = await submitBatchFiles(stack.target, plan, prompts);
    const acceptedAt = performance.now();
    return { ids, acceptedAt, acceptedAfterS: (acceptedAt - submitted) / 1000 };
  });
  const batchIds = under.beside.ids;
  // From when the last file was accepted, in the trace's ms. Not from the first submit: on this
  // machine the submit function's work (validating and tokenizing 2,000 prompts, 13-40 s on two
  // loaded cores) takes the CPU the stack's other parts run on, and the interactive jobs beside it
  // took 15-20 s where they take 4 s once the batch is in; in AWS that function runs on its own.
  const landedMs = under.beside.acceptedAt - under.originMs;
  log(`${LANES_SCENARIO}: ${batchIds.length} files accepted in ${under.beside.acceptedAfterS.toFixed(1)} s, all of them ${(landedMs / 1000).toFixed(1)} s into the trace (started ${((under.originMs - traceStart) / 1000).toFixed(1)} s after the call)`);

  const after = (outcomes: readonly Outcome[]) => outcomes.filter((o) => o.arrivalMs >= landedMs);
  const summaryOf = (run: { readonly outcomes: readonly Outcome[]; readonly gpu: typeof idle.gpu; readonly originMs: number; readonly endMs: number }) => {
    const window = gpuOverWindow(run.gpu, run.originMs + landedMs, run.originMs + endMs);
    return interactiveRun(after(run.outcomes), run.endMs, window, loadavg()[0] ?? 0);
  };
  const idleSummary = summaryOf(idle);
  const underSummary = summaryOf(under);
  const window = gpuOverWindow(under.gpu, under.originMs + landedMs, under.originMs + endMs);
  const inWindow = under.gpu.filter((g) => g.atMs >= under.originMs + landedMs && g.atMs <= under.originMs + endMs);
  const minOutstanding = Math.min(...(inWindow.length > 0 ? inWindow : [nearest(under.gpu, under.originMs + landedMs)].filter((g) => g !== undefined)).map((g) => g.outstanding));
  const succeeded = await succeededOf(stack.target, batchIds).catch(() => null);
  const batchShape = { promptTokens: plan.batchPromptTokens, maxTokens: plan.batchMaxTokens };
  const drain = batchDrain({
    fromMs: landedMs,
    toMs: endMs,
    gpuTokens: window.tokens,
    simMs: window.simMs,
    interactive: under.outcomes,
    engineTokensPerS: context.engineTokensPerS,
    batchMaxTokens: plan.batchMaxTokens,
    minOutstanding,
    admissionLimit: limit,
    batchLeftAtEnd: succeeded === null ? null : plan.batchJobs - succeeded,
    atBound: capacityAtInteractiveBound({
      profile: stack.component.latency,
      batch: batchShape,
      interactive: {
        promptTokens: trace[0]?.promptTokens ?? 0,
        maxTokens: trace[0]?.maxTokens ?? 0,
        rpm: offeredRpm(plan.interactive.arrivals, endMs),
        idleP95Ms: idleSummary.p95_ms,
        concurrent: idleSummary.mean_batch,
      },
      bound: LANES_P95_BOUND,
      maxSequences: Math.max(1, stack.component.copies) * stack.component.limits.max_sequences,
    }),
    cap: {
      slowdownPercent: stack.settings.interactive_slowdown_percent,
      batchSequences: batchJobsUnderCap(stack.component, demandOf({ promptTokens: plan.batchPromptTokens, maxNewTokens: plan.batchMaxTokens }, stack.component.kv_admission), stack.settings.interactive_slowdown_percent),
      stepMs: underSummary.ms_per_token_p50,
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
      landed_at_s: landedMs / 1000,
      accepted_after_s: under.beside.acceptedAfterS,
      succeeded_by_end: succeeded,
      gpu_busy: window.busyFraction,
      copy_outstanding: under.gpu.map((g) => [Math.round((g.atMs - under.originMs) / 100) / 10, g.outstanding] as const),
    },
    interactive: { rpm: offeredRpm(plan.interactive.arrivals, endMs), duration_s: endMs / 1000, requests: trace.length, measured: underSummary.requests, prompt_tokens: trace[0]?.promptTokens ?? 0, max_tokens: trace[0]?.maxTokens ?? 0 },
    idle: idleSummary,
    under_batch: underSummary,
    drain,
    p95_ratio: underSummary.p95_ms / idleSummary.p95_ms,
    prediction: predictLanes(stack, plan, trace, { idleP95Ms: idleSummary.p95_ms, besideP95Ms: underSummary.p95_ms, drainRpm: drain.drain_rpm, landedMs }),
  };
  log(`  idle p95 ${(report.idle.p95_ms / 1000).toFixed(2)} s, beside the batch ${(report.under_batch.p95_ms / 1000).toFixed(2)} s; batch ${drain.drain_rpm.toFixed(1)} of ${drain.capacity_at_bound.rpm.toFixed(1)} jobs/min the interactive jobs leave`);
  const p = report.prediction;
  if (p) log(`  predicted: idle p95 ${(p.idle_p95_ms / 1000).toFixed(2)} s, beside ${(p.p95_ms / 1000).toFixed(2)} s, batch ${p.throughput_rpm.toFixed(1)} jobs/min`);
  return { report, batcher, outcomes: new Map([["idle", idle.outcomes], ["beside the batch", under.outcomes]]) };
}

import { generationInputOf } from "../../core/engine-codec.ts";
import { jobBreakdown, type JobBreakdown } from "../../core/job-breakdown.ts";
import type { JobRecord } from "../../core/jobs.ts";
import type { PackItem } from "../../core/packing.ts";
import { decideRetry } from "../../core/retry-policy.ts";
import type { ChatTemplateName, Component } from "../../core/routes.ts";
import type { JobStore, GpuBatchPlacement } from "../../ports.ts";
import { notifyJob } from "../notify.ts";
import { slotOf } from "../../core/quotas.ts";
import { endUnstarted, expiredEnding, renotifyFinished, waitInQueue } from "./job-endings.ts";
import { callPlanOf, HandedOver, ProgressFencedOut, runContinued, type CallOutput, type ContinuedOutput } from "./continued-call.ts";
import type { RollingMeasure } from "./drift-sync.ts";
import { invokeStreamed, streamsAny, type TextTimes } from "./stream-call.ts";
import type { BatcherDeps, Pending, RunHandle } from "./types.ts";

/** One call to a component copy: one job for rolling engines, a batch for dynamic ones. */
export type GpuCall = {
  readonly placement: GpuBatchPlacement;
  /** KV tokens the whole GPU batch takes, over its calls. */
  readonly kvTokens: number;
  readonly component: Component;
  /** The route's chat template, for a text-only format. */
  readonly chatTemplate: ChatTemplateName;
  readonly members: readonly Pending[];
  /** Called once the copy has answered: its room is free while the results are being written. */
  readonly gpuDone: () => void;
  /** Aborted when the call's one job is cancelled, on an engine that then stops generating it. */
  readonly signal?: AbortSignal | undefined;
  /** Told how long the copy took to answer the jobs it ran, and the tokens each generated, when it answered each of them. */
  readonly timed?: ((measuredMs: number, jobs: readonly PackItem[], generatedTokens: readonly number[]) => void) | undefined;
  /** A rolling call of one job: told what it measured (its text's first and last arrival when streamed) when the copy answered it whole. */
  readonly observed?: ((measure: RollingMeasure) => void) | undefined;
};

/** Claims, runs and finishes the jobs of one call. */
export async function runOnGpu(deps: BatcherDeps, call: GpuCall, run: RunHandle): Promise<void> {
  const { placement, component, members } = call;
  // The RUNNING event goes out beside the GPU call, not before it: the job's start must not wait
  // on its subscribers. Its final event waits for it, so the two never arrive out of order.
  const claimed: { pending: Pending; job: JobRecord; told: Promise<unknown> }[] = [];
  await Promise.all(
    members.map(async (pending) => {
      const now = deps.clock.now();
      if (pending.item.deadlineMs !== undefined && pending.item.deadlineMs <= now.getTime()) {
        // Past its deadline the job is worth nothing to its caller: it must not use the GPU.
        await endUnstarted(deps, pending, expiredEnding(pending), run);
        await run.settle(pending, { kind: "done" });
        return;
      }
      const job = await deps.jobs.claim(pending.message.job_id, placement, now);
      if (job?.attempt === 1) run.departed(pending.source.lane);
      if (job) {
        claimed.push({ pending, job, told: notifyJob(deps, job).catch(() => undefined) });
      } else {
        await renotifyFinished(deps, pending.message.job_id);
        await run.settle(pending, { kind: "done" });
      }
    }),
  );
  if (claimed.length === 0) return;
  // Beside the GPU call, as the RUNNING event: a write lost here shows the job queued, nothing more.
  const tallied = tallyStarted(deps, claimed.map((c) => c.job)).catch((error: unknown) => deps.logger.warn("batch jobs not counted running", { error: String(error) }));

  const { settled, gpuStartMs, gpuEndMs, cost, continued, textTimes } = await invokeMetered(deps, call, claimed, run);
  await tallied;
  call.gpuDone();
  const breakdownOf = (pending: Pending, job: JobRecord, generatedTokens: number, continuation?: ContinuedOutput["continuation"]): JobBreakdown =>
    jobBreakdown({
      createdAt: job.created_at,
      firstClaimedAt: job.first_claimed_at,
      startedAt: job.started_at,
      receivedMs: pending.receivedMs,
      gpuStartMs,
      gpuEndMs,
      gpuBatch: { id: placement.gpu_batch_id, sequences: placement.gpu_batch_size, kvTokens: call.kvTokens },
      component,
      attempts: job.attempt,
      promptTokens: job.prompt_tokens,
      generatedTokens,
      cost: { usd: cost.usdPerSequence, rule: cost.rule },
      continuation,
    });
  if (call.signal?.aborted) {
    // Given up for a cancel: the job has ended already, so nothing is written or retried.
    await Promise.all(claimed.map(({ pending }) => run.settle(pending, { kind: "done" })));
    return;
  }
  // A generation over several calls took their time and their prefills: no measure of one call.
  if (!continued && settled.length === claimed.length && settled.every((r) => r.status === "fulfilled")) {
    call.timed?.(gpuEndMs - gpuStartMs, claimed.map(({ pending }) => pending.item), settled.map((r) => (r.status === "fulfilled" ? r.value.completion_tokens : 0)));
    const [one] = claimed;
    const [answer] = settled;
    if (one && claimed.length === 1 && answer?.status === "fulfilled") {
      const { promptTokens, maxNewTokens } = one.pending.item;
      call.observed?.({ promptTokens, maxNewTokens, generatedTokens: answer.value.completion_tokens, startMs: gpuStartMs, endMs: gpuEndMs, firstTokenMs: textTimes.firstMs, lastTokenMs: textTimes.lastMs });
    }
  }
  await Promise.all(
    claimed.map(async ({ pending, job, told }, i) => {
      await told;
      const result: PromiseSettledResult<CallOutput> = settled[i] ?? { status: "rejected", reason: new Error("no result") };
      if (result.status === "rejected" && result.reason instanceof HandedOver) {
        deps.logger.info("long generation handed over to the next batcher", { jobId: job.job_id, tokens: result.reason.progress.tokens, calls: result.reason.progress.calls });
        await run.settle(pending, { kind: "requeue", delaySeconds: 0 });
        return;
      }
      if (result.status === "rejected" && result.reason instanceof ProgressFencedOut) {
        await run.settle(pending, { kind: "done" });
        return;
      }
      if (result.status === "rejected") {
        const decision = decideRetry(result.reason, job.attempt, deps.random, run.warmingRecheckSeconds);
        if (decision.kind === "retry") {
          deps.logger.warn("job will be retried", { jobId: job.job_id, attempt: job.attempt, delaySeconds: decision.delaySeconds, reason: String(result.reason) });
          await run.settle(pending, { kind: "retry", delaySeconds: decision.delaySeconds });
          return;
        }
        if (decision.kind === "wait") {
          run.componentWarming(component);
          await waitInQueue(deps, pending, { delaySeconds: decision.delaySeconds, waitingFor: component.name }, run, job.attempt);
          return;
        }
        await finishJob(deps, job, { status: "FAILED", error: { code: decision.code, message: decision.reason }, breakdown: breakdownOf(pending, job, 0) }, run);
      } else {
        const { text, completion_tokens, finish_reason } = result.value;
        const breakdown = breakdownOf(pending, job, completion_tokens, result.value.continuation);
        await finishJob(deps, job, { status: "SUCCEEDED", result: { text, prompt_tokens: job.prompt_tokens, completion_tokens, finish_reason }, breakdown }, run);
      }
      await run.settle(pending, { kind: "done" });
    }),
  );
}

/** Runs the call on its copy, timed, and shares the copy's cost over that time (also when it throws, to keep the meter right). */
async function invokeMetered(deps: BatcherDeps, call: GpuCall, claimed: readonly { job: JobRecord; told: Promise<unknown> }[], run: RunHandle) {
  const { component } = call;
  const gpuStartMs = deps.clock.now().getTime();
  run.costs.started(component.name, claimed.length, gpuStartMs);
  const ended = () => {
    const gpuEndMs = deps.clock.now().getTime();
    return { gpuEndMs, cost: run.costs.ended(component, claimed.length, gpuStartMs, gpuEndMs) };
  };
  const options = { signal: call.signal };
  const textTimes: TextTimes = {};
  // A rolling engine's call holds one job: one too long for a call runs over several.
  const [only] = claimed;
  const perCall = claimed.length === 1 && only ? callPlanOf(call, only.job) : undefined;
  let settled: readonly PromiseSettledResult<CallOutput>[];
  try {
    if (only && perCall !== undefined) settled = await Promise.allSettled([runContinued(deps, call, only.job, only.told, perCall, run, options)]);
    else if (streamsAny(call, claimed)) settled = await invokeStreamed(deps, call, claimed, options, textTimes);
    else settled = await deps.invoker.invoke(component, claimed.map(({ job }) => generationInputOf(job.request, call.chatTemplate, component.format)), options);
  } catch (error) {
    ended();
    throw error;
  }
  return { settled, gpuStartMs, continued: perCall !== undefined, textTimes, ...ended() };
}

/** Batch jobs started for the first time count as running in their batch: one write per chunk of lines. */
async function tallyStarted(deps: BatcherDeps, jobs: readonly JobRecord[]): Promise<void> {
  const firstStarts = jobs.filter((j) => j.batch_id !== undefined && j.attempt === 1);
  await Promise.all([...Map.groupBy(firstStarts, (j) => j.tenant)].map(([tenant, started]) => deps.tally.started(tenant, started.map(slotOf))));
}

async function finishJob(deps: BatcherDeps, job: JobRecord, outcome: Parameters<JobStore["finish"]>[2], run: RunHandle): Promise<void> {
  const finished = await deps.jobs.finish(job.job_id, job.attempt, outcome, deps.clock.now());
  if (!finished) return;
  if (finished.batch_id !== undefined) run.touched(finished.batch_id);
  await notifyJob(deps, finished);
}

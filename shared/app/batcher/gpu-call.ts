import { generationInputOf, type GenerationOutput } from "../../core/engine-codec.ts";
import { jobBreakdown, type JobBreakdown } from "../../core/job-breakdown.ts";
import { isTerminal, type JobRecord } from "../../core/jobs.ts";
import type { PackItem } from "../../core/packing.ts";
import { decideRetry } from "../../core/retry-policy.ts";
import type { ChatTemplateName, Component } from "../../core/routes.ts";
import type { JobStore, GpuBatchPlacement } from "../../ports.ts";
import { notifyJob } from "../notify.ts";
import { invokeStreamed, streamsAny } from "./stream-call.ts";
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
  /** Told how long the copy took to answer the jobs it ran, when it answered each of them. */
  readonly timed?: ((measuredMs: number, jobs: readonly PackItem[]) => void) | undefined;
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
        await expireJob(deps, pending, now, run);
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

  const { settled, gpuStartMs, gpuEndMs, cost } = await invokeMetered(deps, call, claimed, run);
  call.gpuDone();
  const breakdownOf = (pending: Pending, job: JobRecord, generatedTokens: number): JobBreakdown =>
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
    });
  if (call.signal?.aborted) {
    // Given up for a cancel: the job has ended already, so nothing is written or retried.
    await Promise.all(claimed.map(({ pending }) => run.settle(pending, { kind: "done" })));
    return;
  }
  if (settled.length === claimed.length && settled.every((r) => r.status === "fulfilled")) call.timed?.(gpuEndMs - gpuStartMs, claimed.map(({ pending }) => pending.item));
  await Promise.all(
    claimed.map(async ({ pending, job, told }, i) => {
      await told;
      const result: PromiseSettledResult<GenerationOutput> = settled[i] ?? { status: "rejected", reason: new Error("no result") };
      if (result.status === "rejected") {
        const decision = decideRetry(result.reason, job.attempt, deps.random, run.warmingRecheckSeconds);
        if (decision.kind === "retry") {
          deps.logger.warn("job will be retried", { jobId: job.job_id, attempt: job.attempt, delaySeconds: decision.delaySeconds, reason: String(result.reason) });
          await run.settle(pending, { kind: "retry", delaySeconds: decision.delaySeconds });
          return;
        }
        if (decision.kind === "wait") {
          run.componentWarming(component);
          await waitInQueue(deps, pending, decision, run, job.attempt);
          return;
        }
        await finishJob(deps, job, { status: "FAILED", error: { code: decision.code, message: decision.reason }, breakdown: breakdownOf(pending, job, 0) }, run);
      } else {
        const { text, completion_tokens, finish_reason } = result.value;
        const breakdown = breakdownOf(pending, job, completion_tokens);
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
  let settled: readonly PromiseSettledResult<GenerationOutput>[];
  try {
    settled = streamsAny(call, claimed)
      ? await invokeStreamed(deps, call, claimed, options)
      : await deps.invoker.invoke(component, claimed.map(({ job }) => generationInputOf(job.request, call.chatTemplate, component.format)), options);
  } catch (error) {
    ended();
    throw error;
  }
  return { settled, gpuStartMs, ...ended() };
}

/** The job waits in the queue for its component, saying why; a job this run had claimed is QUEUED again. */
export async function waitInQueue(
  deps: BatcherDeps,
  pending: Pending,
  decision: { readonly delaySeconds: number; readonly reason: string },
  run: RunHandle,
  claimedAttempt?: number,
): Promise<void> {
  const job = await deps.jobs.noteWaiting(pending.message.job_id, decision.reason, claimedAttempt);
  // Finished meanwhile, or held by a later attempt that has its own message: nothing to wait for.
  if (!job) return run.settle(pending, { kind: "done" });
  await notifyJob(deps, job);
  await run.settle(pending, { kind: "requeue", delaySeconds: decision.delaySeconds });
}

async function expireJob(deps: BatcherDeps, pending: Pending, now: Date, run: RunHandle): Promise<void> {
  const deadline = pending.message.deadline ?? "";
  const ending = { status: "EXPIRED", error: { code: "deadline_exceeded", message: `deadline ${deadline} passed before the job could start` } } as const;
  const job = await deps.jobs.endUnfinished(pending.message.job_id, ending, now);
  if (!job) return renotifyFinished(deps, pending.message.job_id);
  // Ended before it ever ran: it leaves the line now. One that ran once was counted out then.
  if (job.attempt === 0) run.departed(pending.source.lane);
  if (job.batch_id !== undefined) run.touched(job.batch_id);
  await notifyJob(deps, job);
}

async function finishJob(deps: BatcherDeps, job: JobRecord, outcome: Parameters<JobStore["finish"]>[2], run: RunHandle): Promise<void> {
  const finished = await deps.jobs.finish(job.job_id, job.attempt, outcome, deps.clock.now());
  if (!finished) return;
  if (finished.batch_id !== undefined) run.touched(finished.batch_id);
  await notifyJob(deps, finished);
}

/** A redelivered message whose job already finished: say so again, then let the message go. */
export async function renotifyFinished(deps: BatcherDeps, jobId: string): Promise<void> {
  const job = await deps.jobs.get(jobId);
  if (!job) {
    deps.logger.warn("message for a job that does not exist; dropping it", { jobId });
    return;
  }
  if (isTerminal(job.status)) await notifyJob(deps, job);
}

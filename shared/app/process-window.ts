import { batchTopic } from "../core/events.ts";
import { BatchlineError, ModelRejectedError } from "../core/errors.ts";
import { isTerminal, jobMessageSchema, type JobMessage, type JobRecord } from "../core/jobs.ts";
import { generationInputOf, samplingKey, type GenerationOutput } from "../core/engine-codec.ts";
import { packWindow, type PackItem } from "../core/packing.ts";
import { getProfile } from "../core/profiles.ts";
import { promptTextOf } from "../core/prompt.ts";
import { pickComponent } from "../core/routing.ts";
import type { Component, RouteCatalog } from "../core/routes.ts";
import type { BatchStore, Clock, Ids, Invoker, JobOutcome, JobStore } from "../ports.ts";
import type { Logger } from "./logger.ts";
import { notifyJob, notifyTopics, type NotifyDeps } from "./notify.ts";
import { batchCounts } from "./queries.ts";

/** One SQS message of the window, as the event source mapping delivered it. */
export type WindowMessage = { readonly messageId: string; readonly body: string };

export type BatcherDeps = NotifyDeps & {
  readonly catalog: RouteCatalog;
  readonly jobs: JobStore;
  readonly batches: BatchStore;
  readonly invoker: Invoker;
  readonly clock: Clock;
  readonly ids: Ids;
  readonly logger: Logger;
  /** Work in flight per component in this batcher, for routing across components. */
  readonly outstanding: Map<string, number>;
};

type Pending = { readonly messageId: string; readonly message: JobMessage };

/**
 * Runs one window of queue messages on the GPU: pack the jobs into batches that fit a component
 * copy, claim each job (fenced by attempt), invoke, write each result once, notify.
 *
 * @returns the ids of messages to retry (SQS redelivers them after the visibility timeout, and
 * the DLQ takes them after max_receive_count). Every other message is done: its job reached a
 * terminal state, or was already there.
 */
export type WindowReport = {
  /** Message ids to hand back to SQS for another delivery. */
  readonly retry: readonly string[];
  /** GPU batches sent, and the jobs in each: what ops tune windows by. */
  readonly gpuBatchSizes: readonly number[];
};

export async function processWindow(deps: BatcherDeps, window: readonly WindowMessage[]): Promise<WindowReport> {
  const retry: string[] = [];
  const gpuBatchSizes: number[] = [];
  const pending: Pending[] = [];
  for (const m of window) {
    const message = parseJobMessage(m.body);
    if (message) pending.push({ messageId: m.messageId, message });
    else {
      deps.logger.error("not a batchline job message; leaving it for the DLQ", { messageId: m.messageId });
      retry.push(m.messageId);
    }
  }
  const touchedBatches = new Set<string>();
  const byRoute = Map.groupBy(pending, (p) => p.message.model);
  await Promise.all(
    [...byRoute].map(async ([model, items]) => {
      const route = deps.catalog.routes.get(model);
      if (!route) {
        await Promise.all(items.map((p) => failJob(deps, p, "unknown_model", `model ${model} is no longer served`, touchedBatches)));
        return;
      }
      const component = pickComponent(route, deps.outstanding);
      const oneRequestPerBatch = component.engine === "lmi-dynamic";
      // A dynamic batch is one request with one set of parameters: pack each set on its own.
      const groups = oneRequestPerBatch ? [...Map.groupBy(items, (p) => samplingKey(generationInputOf(p.message.request))).values()] : [items];
      const packs = groups.flatMap((group) =>
        packWindow(group.map(toPackItem), { limits: component.limits, profile: getProfile(component.profile), oneRequestPerBatch }),
      );
      const byId = new Map(items.map((p) => [p.message.job_id, p]));
      await Promise.all(
        packs.map(async (pack) => {
          const members = pack.map((item) => byId.get(item.id)).filter((p): p is Pending => p !== undefined);
          gpuBatchSizes.push(members.length);
          retry.push(...(await runBatch(deps, component, members, touchedBatches)));
        }),
      );
    }),
  );
  await Promise.all([...touchedBatches].map((batchId) => reportBatchProgress(deps, batchId)));
  return { retry, gpuBatchSizes };
}

function parseJobMessage(body: string): JobMessage | undefined {
  try {
    const parsed = jobMessageSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function toPackItem(p: Pending): PackItem {
  const m = p.message;
  return {
    id: m.job_id,
    promptTokens: m.prompt_tokens,
    maxNewTokens: m.request.max_tokens,
    payloadBytes: Buffer.byteLength(promptTextOf(m.request), "utf8"),
    priority: m.priority,
    deadlineMs: m.deadline === undefined ? undefined : Date.parse(m.deadline),
    submittedMs: Date.parse(m.submitted_at),
  };
}

/** Claims, runs and finishes one GPU batch; returns the message ids to retry. */
async function runBatch(deps: BatcherDeps, component: Component, members: readonly Pending[], touched: Set<string>): Promise<string[]> {
  const placement = { window_id: deps.ids.window(), window_size: members.length, component: component.name };
  const claims = await Promise.all(members.map((p) => deps.jobs.claim(p.message.job_id, placement, deps.clock.now())));
  const claimed: { pending: Pending; job: JobRecord }[] = [];
  await Promise.all(
    members.map(async (pending, i) => {
      const job = claims[i];
      if (job) {
        claimed.push({ pending, job });
        await notifyJob(deps, job);
      } else {
        await renotifyFinished(deps, pending);
      }
    }),
  );
  if (claimed.length === 0) return [];

  deps.outstanding.set(component.name, (deps.outstanding.get(component.name) ?? 0) + claimed.length);
  let settled: readonly PromiseSettledResult<GenerationOutput>[];
  try {
    settled = await deps.invoker.invoke(
      component,
      claimed.map(({ job }) => generationInputOf(job.request)),
    );
  } finally {
    deps.outstanding.set(component.name, (deps.outstanding.get(component.name) ?? 0) - claimed.length);
  }

  const retry: string[] = [];
  await Promise.all(
    claimed.map(async ({ pending, job }, i) => {
      const result = settled[i];
      const outcome = result ? toOutcome(job, result) : undefined;
      if (!outcome) {
        const reason = result?.status === "rejected" ? String(result.reason) : "no result";
        deps.logger.warn("job will be retried", { jobId: job.job_id, attempt: job.attempt, reason });
        retry.push(pending.messageId);
        return;
      }
      const finished = await deps.jobs.finish(job.job_id, job.attempt, outcome, deps.clock.now());
      if (finished) {
        if (finished.batch_id !== undefined) touched.add(finished.batch_id);
        await notifyJob(deps, finished);
      }
    }),
  );
  return retry;
}

/** A terminal outcome, or undefined when the failure is worth another attempt. */
function toOutcome(
  job: JobRecord,
  result: PromiseSettledResult<GenerationOutput>,
): JobOutcome | undefined {
  if (result.status === "fulfilled") {
    const { text, completion_tokens, finish_reason } = result.value;
    return { status: "SUCCEEDED", result: { text, prompt_tokens: job.prompt_tokens, completion_tokens, finish_reason } };
  }
  const error = result.reason;
  if (error instanceof ModelRejectedError) return { status: "FAILED", error: { code: error.code, message: error.message } };
  if (error instanceof BatchlineError && !error.retryable) return { status: "FAILED", error: { code: error.code, message: error.message } };
  return undefined;
}

/** A redelivered message whose job already finished: say so again, then let the message go. */
async function renotifyFinished(deps: BatcherDeps, pending: Pending): Promise<void> {
  const job = await deps.jobs.get(pending.message.job_id);
  if (!job) {
    deps.logger.warn("message for a job that does not exist; dropping it", { jobId: pending.message.job_id });
    return;
  }
  if (isTerminal(job.status)) await notifyJob(deps, job);
}

async function failJob(deps: BatcherDeps, pending: Pending, code: string, message: string, touched: Set<string>): Promise<void> {
  const job = await deps.jobs.failUnfinished(pending.message.job_id, { code, message }, deps.clock.now());
  if (job) {
    if (job.batch_id !== undefined) touched.add(job.batch_id);
    await notifyJob(deps, job);
  } else {
    await renotifyFinished(deps, pending);
  }
}

async function reportBatchProgress(deps: BatcherDeps, batchId: string): Promise<void> {
  const batch = await deps.batches.get(batchId);
  if (!batch) return;
  const counts = await batchCounts(deps, batch);
  await notifyTopics(deps, [batchTopic(batchId)], { type: "batch.progress", batch_id: batchId, request_counts: counts });
}

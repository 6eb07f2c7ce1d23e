import { FinalEvents, type JobEvent } from "./events.ts";
import type { JobTimeline, Outcome } from "./outcome.ts";
import type { PromptBook } from "./prompts.ts";
import { openLoop, sleepUntil } from "./schedule.ts";
import type { TraceRequest } from "./trace.ts";

/** The stack's public endpoints, and who the bench is. */
export type PipelineTarget = { readonly http: string; readonly websocket: string; readonly apiKey: string; readonly model: string };

export type DriveOptions = {
  readonly prompts: PromptBook;
  /** Stop waiting for answers this long after the trace started. */
  readonly untilMs: number;
  /** Once every request is sent, stop waiting as soon as fewer than this many are unanswered. */
  readonly stopBelowUnanswered?: number | undefined;
};

type Record_ = {
  request: TraceRequest;
  jobId?: string;
  status: Outcome["status"];
  finishedMs?: number;
  completionTokens: number;
  queueWaitMs?: number;
  gpuBatchSize?: number;
  waitedForWarming?: boolean;
  timeline?: JobTimeline;
  error?: string;
};

/**
 * Drives the pipeline end to end as its users do: `POST /v1/jobs` for each request of the trace
 * at its time, a subscription on a WebSocket, and the job's final event as its answer.
 * Returns what happened to each request; `originMs` is the trace's time zero (performance.now()).
 */
export async function drivePipeline(target: PipelineTarget, trace: readonly TraceRequest[], options: DriveOptions): Promise<{ outcomes: Outcome[]; originMs: number; endMs: number }> {
  const records: Record_[] = trace.map((request) => ({ request, status: "unfinished", completionTokens: 0 }));
  const byJob = new Map<string, Record_>();
  let open = trace.length;
  let sent = false;
  const allDone = Promise.withResolvers<void>();
  const below = options.stopBelowUnanswered ?? 1;
  const check = () => {
    if (open === 0 || (sent && open < below)) allDone.resolve();
  };
  const settle = () => {
    open--;
    check();
  };
  const originMs = performance.now() + 100;
  // The job's timings are wall-clock (the stack's Date): this turns one into ms after the origin.
  const sinceOrigin = (iso: string | undefined) => (iso === undefined ? undefined : Date.parse(iso) - (performance.timeOrigin + originMs));
  const events = await FinalEvents.connect(target.websocket, target.apiKey, (event, atMs) => {
    const record = event.job && byJob.get(event.job.job_id);
    if (!record || record.status !== "unfinished") return;
    Object.assign(record, fromFinalEvent(event, atMs - originMs));
    const timings = event.job?.timings;
    record.timeline = { ...record.timeline, submittedMs: sinceOrigin(timings?.submitted_at), startedMs: sinceOrigin(timings?.started_at), doneMs: sinceOrigin(timings?.finished_at) };
    settle();
  }, (jobId, reason) => {
    const record = byJob.get(jobId);
    if (record && reason === "warming") record.waitedForWarming = true;
  });
  try {
    const sending = openLoop(trace, originMs, async (request) => {
      const record = records[request.index] as Record_;
      try {
        const response = await fetch(`${target.http}/v1/jobs`, {
          method: "POST",
          headers: { authorization: `Bearer ${target.apiKey}`, "content-type": "application/json" },
          body: JSON.stringify({ model: target.model, prompt: options.prompts.prompt(request.promptTokens, request.index), max_tokens: request.maxTokens }),
        });
        const text = await response.text();
        if (response.status !== 202) throw new Error(`POST /v1/jobs: ${response.status} ${text.slice(0, 200)}`);
        const { job_id, queue } = JSON.parse(text) as { job_id: string; queue?: { estimated_start_at: string } };
        record.timeline = { ...record.timeline, acceptedMs: performance.now() - originMs, estimatedStartMs: sinceOrigin(queue?.estimated_start_at) };
        record.jobId = job_id;
        byJob.set(job_id, record);
        events.subscribe(job_id);
      } catch (error) {
        record.status = "rejected";
        record.error = error instanceof Error ? error.message : String(error);
        settle();
      }
    });
    await sending;
    sent = true;
    check();
    await Promise.race([allDone.promise, sleepUntil(originMs + options.untilMs)]);
  } finally {
    events.close();
  }
  return {
    originMs,
    endMs: performance.now() - originMs,
    outcomes: records.map((r) => ({
      index: r.request.index,
      jobId: r.jobId,
      arrivalMs: r.request.atMs,
      promptTokens: r.request.promptTokens,
      maxTokens: r.request.maxTokens,
      status: r.status,
      finishedMs: r.finishedMs,
      completionTokens: r.completionTokens,
      queueWaitMs: r.queueWaitMs,
      gpuBatchSize: r.gpuBatchSize,
      waitedForWarming: r.waitedForWarming,
      timeline: r.timeline,
      error: r.error,
    })),
  };
}

function fromFinalEvent(event: JobEvent, finishedMs: number): Partial<Record_> {
  const job = event.job;
  const timings = job?.timings;
  const started = timings?.started_at === undefined ? undefined : Date.parse(timings.started_at);
  const queueWaitMs = started === undefined || timings === undefined ? undefined : started - Date.parse(timings.submitted_at);
  const succeeded = event.type === "job.succeeded";
  return {
    status: succeeded ? "succeeded" : "failed",
    finishedMs,
    completionTokens: job?.result?.completion_tokens ?? 0,
    queueWaitMs,
    gpuBatchSize: job?.gpu_batch?.gpu_batch_size,
    error: succeeded ? undefined : `${event.type}: ${job?.error?.code ?? ""} ${job?.error?.message ?? ""}`.trim(),
  };
}

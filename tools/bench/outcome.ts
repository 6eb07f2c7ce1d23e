/** What happened to one request of a trace, in ms after the trace started. */
export type Outcome = {
  readonly index: number;
  /** The job the pipeline made of it (pipeline only). */
  readonly jobId?: string | undefined;
  /** When the trace said it arrives. Latency counts from here, so a late sender is not hidden. */
  readonly arrivalMs: number;
  readonly promptTokens: number;
  readonly maxTokens: number;
  /** "unfinished": no final answer by the end of the run (still queued, or purged at the end). */
  readonly status: "succeeded" | "failed" | "rejected" | "unfinished";
  /** When the client had its final answer (the WebSocket event, or the engine's reply). */
  readonly finishedMs?: number | undefined;
  readonly completionTokens: number;
  /** started_at − submitted_at of the job (pipeline only). */
  readonly queueWaitMs?: number | undefined;
  /** Jobs in the window the job ran in (pipeline only). */
  readonly gpuBatchSize?: number | undefined;
  /**
   * Where the job's time went (pipeline only), ms after the trace started: the POST's answer, and
   * the job's own submitted_at, started_at (its GPU call began) and finished_at (its result was
   * written). The final event's arrival is `finishedMs`.
   */
  readonly timeline?: JobTimeline | undefined;
  /** Whether the job was told it waits for a component starting a copy (pipeline only). */
  readonly waitedForWarming?: boolean | undefined;
  readonly error?: string | undefined;
};

export const latencyOf = (o: Outcome): number | undefined => (o.finishedMs === undefined ? undefined : o.finishedMs - o.arrivalMs);

export type JobTimeline = {
  readonly acceptedMs?: number | undefined;
  /** The start the POST's answer estimated for the job (its `queue.estimated_start_at`). */
  readonly estimatedStartMs?: number | undefined;
  readonly submittedMs?: number | undefined;
  readonly startedMs?: number | undefined;
  readonly doneMs?: number | undefined;
};

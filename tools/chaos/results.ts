import type { DynamoDbFaultProxyStats } from "#local/dynamodb-fault-proxy";
import type { InvocationReport } from "#local/process-invoker";
import type { ChaosAccount } from "./accounting.ts";
import { countBy, median, mergeCounts, round } from "./counting.ts";
import type { EndMeasurements } from "./measurements.ts";
import type { ChaosOptions } from "./options.ts";
import type { StateSampler } from "./sampler.ts";
import type { SubmitStats } from "./submit.ts";
import type { StoreCrashFigures, StoreName } from "./store-crashes.ts";
import type { Subscriber } from "./subscribers.ts";

/** chaos-results/latest.json: the verdict's figures first, then everything that explains them. */
export type ChaosResults = {
  readonly jobs: number;
  readonly lost: number;
  readonly double_writes: number;
  readonly backwards: number;
  readonly notified_ratio: number;
  readonly failed_without_reason: number;
  readonly events_out_of_order: number;
  readonly passed: boolean;
  readonly [figure: string]: unknown;
};

/** Wall-clock moments of the run (Date.now()). */
export type RunTimes = {
  readonly started: number;
  readonly stackUp: number;
  readonly faultsOn: number;
  readonly submitStarted: number;
  readonly submitEnded: number | undefined;
  readonly drained: number;
};

export type FinishedRun = {
  readonly options: ChaosOptions;
  readonly stage: string;
  readonly account: ChaosAccount;
  readonly acceptedVia: Readonly<Record<string, number>>;
  readonly submitStats: SubmitStats | undefined;
  readonly times: RunTimes;
  readonly sampler: StateSampler;
  readonly subscribers: readonly Subscriber[];
  readonly invocations: readonly InvocationReport[];
  readonly dynamodb: { readonly stats: DynamoDbFaultProxyStats; readonly jobAnswersLost: number; readonly counterRetries: { readonly lostAnswers: number; readonly amount: number }; readonly usageRequests: Readonly<Record<string, number>> };
  readonly measured: EndMeasurements;
  readonly storeCrashes: Readonly<Partial<Record<StoreName, StoreCrashFigures>>>;
};

/** The results as `npm run chaos` writes and summarizes them; the keys' order is the file's. */
export function chaosResults(run: FinishedRun): ChaosResults {
  const { options, account: a, times, subscribers, measured } = run;
  const batcherRuns = run.invocations.filter((r) => r.functionName.endsWith("-batcher"));
  const deadLetterRuns = run.invocations.filter((r) => r.functionName.endsWith("-deadLetter"));
  const rss = batcherRuns.map((r) => r.peakRssBytes).filter((b) => b > 0).sort((a, b) => a - b);
  const mb = (bytes: number | undefined) => (bytes === undefined ? null : Math.round((bytes / 1024 / 1024) * 10) / 10);
  const initP50 = Math.round(median(batcherRuns.flatMap((r) => (r.initMs === undefined ? [] : [r.initMs]))));
  const sumOver = <T>(items: readonly T[], count: (item: T) => number) => items.reduce((sum, item) => sum + count(item), 0);
  const seconds = (from: number, to: number) => round((to - from) / 1000, 1);
  return {
    jobs: a.jobs,
    lost: a.lost,
    double_writes: a.double_writes,
    backwards: a.backwards,
    notified_ratio: a.notified_ratio,
    failed_without_reason: a.failed_without_reason,
    events_out_of_order: a.events_out_of_order,
    passed: a.passed && measured.drift.total === 0,
    mode: options.mode,
    seed: options.seed,
    stage: run.stage,
    accepted: a.accepted,
    accepted_twice: a.accepted_twice,
    accepted_twice_detail: a.accepted_twice_detail,
    accepted_via: run.acceptedVia,
    statuses: a.statuses,
    failed_reasons: a.failed_reasons,
    duration_s: seconds(times.started, Date.now()),
    stack_start_s: seconds(times.started, times.stackUp),
    submit_s: seconds(times.submitStarted, times.submitEnded ?? times.drained),
    drain_s: seconds(times.submitStarted, times.drained),
    throughput_jobs_per_s: round(a.ended / ((times.drained - times.submitStarted) / 1000), 1),
    retries: a.retries,
    jobs_claimed_more_than_once: a.jobs_claimed_more_than_once,
    max_claims_of_a_job: a.max_claims_of_a_job,
    dlq: {
      dead_letter_invocations: deadLetterRuns.length,
      dead_letter_records: sumOver(deadLetterRuns, (r) => r.records),
      failed_retries_exhausted: a.failed_retries_exhausted,
    },
    lost_detail: a.lost_detail,
    double_writes_detail: a.double_writes_detail,
    double_terminal_writes: a.double_terminal_writes,
    unobserved_results: a.unobserved_results,
    backwards_detail: {
      dynamodb_writes: a.backwards_by_source.dynamodb_writes,
      dynamodb_samples: a.backwards_by_source.dynamodb_samples,
      samples: run.sampler.scans,
      sampling_s: round(run.sampler.scanMs / 1000, 1),
      event_streams: a.backwards_by_source.event_streams,
      examples: a.backwards_examples,
    },
    notifications: {
      subscribers: subscribers.length,
      connected_at_end: a.connected_at_end,
      fully_notified: a.fully_notified,
      missing_finals: a.missing_finals,
      final_events: sumOver(subscribers, (s) => s.finalEvents),
      events_order: a.events_order,
      followed_jobs: sumOver(subscribers, (s) => s.jobs.size),
      events: sumOver(subscribers, (s) => s.events),
      drops: sumOver(subscribers, (s) => s.drops),
      connects: sumOver(subscribers, (s) => s.connects),
      refused_connects: sumOver(subscribers, (s) => s.refusedConnects),
      error_replies: sumOver(subscribers, (s) => s.errorReplies),
      error_kinds: mergeCounts(subscribers.map((s) => s.errorKinds)),
      resent_frames: sumOver(subscribers, (s) => s.resentFrames),
    },
    batcher: {
      invocations: batcherRuns.length,
      by_outcome: countBy(batcherRuns, (r) => r.outcome),
      records_delivered: sumOver(batcherRuns, (r) => r.records),
      peak_rss_mb: mb(rss.at(-1)),
      rss_p50_mb: mb(rss[Math.floor(rss.length / 2)]),
      rss_p95_mb: mb(rss[Math.floor(rss.length * 0.95)]),
      init_ms_p50: initP50,
      lambda_timeout_s: options.lambdaTimeoutSeconds,
      visibility_timeout_s: options.visibilityTimeoutSeconds,
    },
    faults: {
      enabled: options.faults,
      dynamodb: { ...run.dynamodb.stats, settings: options.faults ? options.dynamodbFaults : null, answers_lost_after_a_job_write: run.dynamodb.jobAnswersLost },
      sagemaker: { settings: options.faults ? options.sagemakerFaults : null, ...measured.emulator },
      batcher_kill_fraction: options.faults ? options.killFraction : 0,
      subscriber_drops: sumOver(subscribers, (s) => s.drops),
      faults_on_s: seconds(times.faultsOn, times.drained),
      store_crashes: run.storeCrashes,
    },
    submissions: run.submitStats ?? null,
    cpu_s: {
      // What the machine spent, by process: this one (dynalite, fauxqs, the emulator, the proxy, the clients), osls offline (HTTP and WebSocket functions), the batcher and dead-letter runners.
      chaos_and_emulators: round((measured.mainCpu.user + measured.mainCpu.system) / 1e6, 1),
      offline_functions: measured.offlineCpuMs === undefined ? null : round(measured.offlineCpuMs / 1000, 1),
      batcher_runners: round(sumOver(batcherRuns, (r) => r.cpuMs) / 1000, 1),
      batcher_runner_init_p50_ms: initP50,
    },
    quota_jobs_in_flight_after: measured.jobsInFlight,
    counter_drift: measured.drift,
    counter_drift_before_slot_sweep: measured.driftBeforeSweep,
    slot_sweep_after_run: measured.slotSweep,
    usage_table_requests: { ...run.dynamodb.usageRequests, per_job: round(Object.values(run.dynamodb.usageRequests).reduce((sum, n) => sum + n, 0) / Math.max(1, a.jobs), 2) },
    quota_counter_lost_answers: { updates: run.dynamodb.counterRetries.lostAnswers, amount: run.dynamodb.counterRetries.amount },
    queues_left: measured.queuesLeft,
    settings: { timeScale: options.timeScale, models: options.models, maxTokens: options.maxTokens, subscribers: options.subscribers, handlers: options.handlers },
  };
}

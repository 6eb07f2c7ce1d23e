import type { ChaosResults } from "./results.ts";
import type { StoreCrashFigures } from "./store-crashes.ts";
import type { SubmitStats } from "./submit.ts";

/** The figures a person reads first, then the rest. */
export function summary(results: ChaosResults): string {
  const r = results as ChaosResults & Record<string, any>;
  const mark = (ok: boolean) => (ok ? "ok  " : "FAIL");
  const lines = [
    `chaos ${r.mode} (seed ${r.seed}): ${r.passed ? "PASSED" : "FAILED"}`,
    `  ${mark(r.jobs > 0)} jobs                  ${r.jobs} (accepted ${r.accepted}: ${JSON.stringify(r.accepted_via)})`,
    `  ${mark(r.lost === 0)} lost                  ${r.lost}`,
    `  ${mark(r.accepted_twice === 0)} accepted_twice        ${r.accepted_twice} (one job id answered for two submissions)`,
    `  ${mark(r.double_writes === 0)} double_writes         ${r.double_writes} (any terminal state written twice: ${r.double_terminal_writes}; results not seen by the proxy: ${r.unobserved_results})`,
    `  ${mark(r.backwards === 0)} backwards             ${r.backwards} (writes ${r.backwards_detail.dynamodb_writes}, samples ${r.backwards_detail.dynamodb_samples} in ${r.backwards_detail.samples} scans taking ${r.backwards_detail.sampling_s} s, event streams ${r.backwards_detail.event_streams})`,
    `  ${mark(r.notified_ratio === 1)} notified_ratio        ${r.notified_ratio} (${r.notifications.fully_notified} of ${r.notifications.connected_at_end} connected subscribers, ${r.notifications.subscribers} in all)`,
    `  ${mark(r.failed_without_reason === 0)} failed_without_reason ${r.failed_without_reason}`,
    `  ${mark(r.events_out_of_order === 0)} events_out_of_order   ${r.events_out_of_order} applied under the version rule (${r.notifications.events_order.out_of_order_before_versions} as they arrived; dropped ${r.notifications.events_order.dropped_stale} stale and ${r.notifications.events_order.dropped_repeats} repeats)`,
    `  statuses              ${JSON.stringify(r.statuses)}`,
    `  failures              ${JSON.stringify(r.failed_reasons)}`,
    `  duration              ${r.duration_s} s (stack start ${r.stack_start_s} s, submitting ${r.submit_s} s, until all terminal ${r.drain_s} s); ${r.throughput_jobs_per_s} jobs/s`,
    `  retries               ${r.retries} extra claims; ${r.jobs_claimed_more_than_once} jobs claimed more than once (at most ${r.max_claims_of_a_job})`,
    `  dead letters          ${r.dlq.dead_letter_records} messages in ${r.dlq.dead_letter_invocations} invocations; ${r.dlq.failed_retries_exhausted} jobs FAILED retries_exhausted`,
    `  batcher runners       ${r.batcher.invocations} invocations ${JSON.stringify(r.batcher.by_outcome)}; peak RSS ${r.batcher.peak_rss_mb} MB (p50 ${r.batcher.rss_p50_mb}, p95 ${r.batcher.rss_p95_mb}); init p50 ${r.batcher.init_ms_p50} ms`,
    `  DynamoDB faults       ${JSON.stringify(r.faults.dynamodb.injected)} of ${r.faults.dynamodb.requests} requests; ${r.faults.dynamodb.answers_lost_after_a_job_write} job writes whose answer was lost`,
    `  SageMaker             ${JSON.stringify(r.faults.sagemaker)}`,
    ...storeCrashLines(r.faults.store_crashes ?? {}),
    `  WebSocket             ${r.notifications.drops} drops, ${r.notifications.connects} connects (${r.notifications.refused_connects} refused), ${r.notifications.final_events} final events for ${r.notifications.followed_jobs} followed jobs, ${r.notifications.resent_frames} frames resent`,
    `  CPU                   ${JSON.stringify(r.cpu_s)} s`,
    `  quota after drain     ${r.quota_jobs_in_flight_after} jobs in flight for tenant dev (0 when every slot came back); counter updates written but answered with an error: ${r.quota_counter_lost_answers.updates} (amount ${r.quota_counter_lost_answers.amount})`,
    `  ${mark(r.counter_drift.total === 0)} counter drift         ${r.counter_drift.total} (jobs in flight ${r.counter_drift.jobs_in_flight.drift}: ${r.counter_drift.jobs_in_flight.counter} held for ${r.counter_drift.jobs_in_flight.expected}; tokens ${r.counter_drift.tokens_per_minute.drift} over ${r.counter_drift.tokens_per_minute.minutes} minutes still stored; batch counts ${r.counter_drift.batches.drift} in ${r.counter_drift.batches.drifted} of ${r.counter_drift.batches.batches} batches); usage table requests ${JSON.stringify(r.usage_table_requests)}`,
    `  slot sweep after run  drift ${r.counter_drift_before_slot_sweep.total} before it (jobs in flight ${r.counter_drift_before_slot_sweep.jobs_in_flight.drift}, batch counts ${r.counter_drift_before_slot_sweep.batches.drift}); ${JSON.stringify(r.slot_sweep_after_run.sweeps)}${r.slot_sweep_after_run.warnings.length > 0 ? `; ${r.slot_sweep_after_run.warnings.slice(0, 3).join("; ")}` : ""}`,
    `  queues left           ${JSON.stringify(r.queues_left)}`,
  ];
  if (r.submissions) {
    const s = r.submissions as SubmitStats;
    lines.push(`  submissions           ${s.batches} batch files, ${s.httpJobs} HTTP and ${s.wsJobs} WebSocket jobs; ${s.retriedRequests} requests retried ${JSON.stringify(s.failedAnswers)}; ${s.refusedBatches} batch files sent again; ${s.gaveUp} given up; ${s.cancelled} of ${s.cancelRequests} cancels took`);
    const times = Object.entries(s.requestTimes).map(([route, t]) => `${route} ${t.requests} × ${Math.round(t.total_ms / Math.max(1, t.requests))} ms`);
    lines.push(`  submit requests       ${times.join("; ")}`);
    if (Object.keys(s.refusedAnswers).length > 0) lines.push(`  refused submissions   ${JSON.stringify(s.refusedAnswers)}`);
    if (s.oddAnswers.length > 0) lines.push(`  odd answers           ${JSON.stringify(s.oddAnswers.slice(0, 5))}`);
  }
  if (Object.keys(r.notifications.error_kinds ?? {}).length > 0) lines.push(`  WebSocket errors      ${JSON.stringify(r.notifications.error_kinds)}`);
  if (r.lost > 0) lines.push(`  lost jobs             ${JSON.stringify(r.lost_detail)}`);
  if (r.backwards > 0) lines.push(`  backwards examples    ${JSON.stringify(r.backwards_detail.examples.slice(0, 5))}`);
  if (r.notified_ratio < 1) lines.push(`  missing finals        ${JSON.stringify(r.notifications.missing_finals.slice(0, 5))}`);
  return lines.join("\n");
}

function storeCrashLines(crashes: Readonly<Record<string, StoreCrashFigures>>): string[] {
  return Object.entries(crashes).map(([store, c]) =>
    c.happened
      ? `  ${`${store} crash`.padEnd(22)}SIGKILL at ${c.killed_at_s} s, down ${c.down_s} s (restart ${c.restart_s} s); meanwhile and ${c.settle_s} s after: ${JSON.stringify(c.failed_meanwhile)}`
      : `  ${`${store} crash`.padEnd(22)}did not happen (the run ended first)`,
  );
}

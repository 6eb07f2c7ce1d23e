import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient, GetCommand, ScanCommand, type ScanCommandOutput } from "@aws-sdk/lib-dynamodb";
import { localClientConfig } from "#local/aws";
import { startDynamoDbFaultProxy, type DynamoDbFaultSettings } from "#local/dynamodb-fault-proxy";
import type { Logger } from "#local/log";
import { freePort } from "#local/ports";
import { type InvocationReport, type KillQuestion, processInvoker, procCpuMs } from "#local/process-invoker";
import { seededRandom } from "#local/sagemaker/random";
import { startStack, type Stack } from "#local/stack";
import { prepareFunctions } from "./functions.ts";
import { submitAll, type SubmitStats } from "./submit.ts";
import { Subscriber } from "./subscribers.ts";
import { isTerminalStatus, StatusTracker, WriteLog, type Backwards } from "./writes.ts";

/** Everything a chaos run does; `defaultChaosOptions` is `npm run chaos`. */
export type ChaosOptions = {
  readonly mode: "chaos" | "burst";
  readonly jobs: number;
  readonly seed: number;
  /** Simulated GPU ms per wall ms. */
  readonly timeScale: number;
  readonly models: readonly string[];
  readonly maxTokens: readonly [number, number];
  /** All faults on (false: a clean run, e.g. a burst that measures memory alone). */
  readonly faults: boolean;
  readonly dynamodbFaults: DynamoDbFaultSettings;
  /** POST /_emulator/faults, with the outage given in wall seconds from when faults go on. */
  readonly sagemakerFaults: {
    readonly throttle_fraction: number;
    readonly error_fraction: number;
    readonly error_type: "ServiceUnavailable" | "InternalFailure" | "InternalDependencyException" | "ModelError";
    readonly outage?: { readonly after_wall_seconds: number; readonly for_wall_seconds: number; readonly kind: "unavailable" | "reset" };
  };
  /** Share of batcher invocations SIGKILLed, at a moment drawn uniformly in `killWindowMs` after the handler starts. */
  readonly killFraction: number;
  /**
   * At least this many batcher invocations are killed whatever the draw, each at the moment one
   * of its jobs is claimed: mid-batch for sure, however short invocations are (a short run still
   * sees kills). Armed on one invocation after another until they have landed.
   */
  readonly killFirst: number;
  readonly killWindowMs: readonly [number, number];
  /** The batcher's Lambda timeout (serverless.yml: 150 s) and the route queues' visibility timeout (900 s: six times it). */
  readonly lambdaTimeoutSeconds: number;
  readonly visibilityTimeoutSeconds: number;
  /**
   * The route mappings' MaximumBatchingWindowInSeconds instead of the routes file's; undefined:
   * the file's. For a batcher too short-lived to top its window up (a timeout under the
   * handler's finish reserve), a window lets an invocation take many jobs, as top-up would.
   */
  readonly batchingWindowSeconds: number | undefined;
  readonly subscribers: number;
  /** Share of accepted jobs the subscribers follow (all of them in a chaos run). */
  readonly followShare: number;
  /** Share of subscribers that drop and reconnect; the others stay connected all along. */
  readonly flakyShare: number;
  /** A flaky subscriber's connection lasts between these (ms). */
  readonly connectionLifeMs: readonly [number, number];
  readonly batchShare: number;
  readonly batchLines: number;
  readonly wsShare: number;
  readonly deadlineShare: number;
  readonly cancelShare: number;
  readonly submitConcurrency: number;
  /** After the last submission, how long jobs get to reach a terminal state. */
  readonly drainTimeoutMs: number;
  /** After that, how long connected subscribers get to receive the final events. */
  readonly notifyTimeoutMs: number;
  /** How often every job's status is read from dynalite; less often when a scan takes long (see StateSampler). */
  readonly sampleEveryMs: number;
  /** The batcher runners import a bundle (as Lambda would) or the TypeScript source. */
  readonly handlers: "bundle" | "source";
  readonly projectDir: string;
  /** Where latest.json and the logs go; undefined: nowhere. */
  readonly outDir: string | undefined;
};

export const defaultChaosOptions: ChaosOptions = {
  mode: "chaos",
  jobs: 5000,
  seed: 1,
  timeScale: 50,
  models: ["llama-2-7b", "llama-3-8b", "llama-3-1b"],
  maxTokens: [4, 32],
  faults: true,
  dynamodbFaults: { beforeFraction: 0.02, afterFraction: 0.02, throttleShare: 0.5 },
  sagemakerFaults: {
    throttle_fraction: 0.05,
    error_fraction: 0.05,
    error_type: "ServiceUnavailable",
    // Long enough that jobs caught in it use up their deliveries: the DLQ and the dead-letter function get work.
    outage: { after_wall_seconds: 30, for_wall_seconds: 30, kind: "unavailable" },
  },
  killFraction: 0.15,
  killFirst: 1,
  killWindowMs: [500, 10_000],
  lambdaTimeoutSeconds: 90,
  visibilityTimeoutSeconds: 180,
  batchingWindowSeconds: undefined,
  subscribers: 12,
  followShare: 1,
  flakyShare: 0.5,
  connectionLifeMs: [3_000, 20_000],
  batchShare: 0.8,
  batchLines: 100,
  wsShare: 0.3,
  deadlineShare: 0.1,
  cancelShare: 0.01,
  // Submits wait mostly on DynamoDB and SQS round trips: 12 at once accept 1,500 jobs in 129 s
  // where 6 took 179 s (on 2 busy cores), and the run is mostly its submitting.
  submitConcurrency: 12,
  drainTimeoutMs: 15 * 60_000,
  notifyTimeoutMs: 60_000,
  sampleEveryMs: 3000,
  handlers: "bundle",
  projectDir: process.cwd(),
  outDir: "chaos-results",
};

export type ChaosResults = {
  readonly jobs: number;
  readonly lost: number;
  readonly double_writes: number;
  readonly backwards: number;
  readonly notified_ratio: number;
  readonly failed_without_reason: number;
  readonly passed: boolean;
  readonly [figure: string]: unknown;
};

const TERMINAL_EVENT: Readonly<Record<string, string>> = { SUCCEEDED: "SUCCEEDED", FAILED: "FAILED", CANCELLED: "CANCELLED", EXPIRED: "EXPIRED" };

type JobItem = { job_id: string; status: string; attempt?: number; error?: { code?: string; message?: string }; result?: unknown; model?: string };

export async function runChaos(options: ChaosOptions, print: (line: string) => void = () => undefined, signal?: AbortSignal): Promise<ChaosResults> {
  const started = Date.now();
  const cpuAtStart = process.cpuUsage();
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);
  const random = seededRandom(`chaos\u0000${options.seed}`);
  const stage = `chaos${Date.now().toString(36).slice(-5)}${Math.floor(random() * 1e6).toString(36)}`;
  const prefix = `batchline-${stage}`;
  const jobsTable = `${prefix}-jobs`;
  // Bundles go under node_modules, as Lambda ships them beside their packages (llama3-tokenizer-js is required at run time).
  const cacheDir = join(options.projectDir, "node_modules", ".cache");
  mkdirSync(cacheDir, { recursive: true });
  const scratch = mkdtempSync(join(cacheDir, "batchline-chaos-"));
  const logFile = options.outDir === undefined ? undefined : join(options.outDir, "latest-functions.log");
  if (options.outDir !== undefined) mkdirSync(options.outDir, { recursive: true });
  if (logFile) writeFileSync(logFile, "");
  const writeLog = (line: string) => {
    if (logFile) appendFileSync(logFile, line.endsWith("\n") ? line : `${line}\n`);
  };
  const stackLog: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => writeLog(`[stack] warn ${m}`), error: (m) => writeLog(`[stack] error ${m}`) };
  process.env.BATCHLINE_LOG_LEVEL ??= "WARN";

  print(`chaos ${options.mode}: ${options.jobs} jobs, seed ${options.seed}, faults ${options.faults ? "on" : "off"}, stage ${stage}`);
  // Bundled while the stack starts; the first invocation waits for both.
  const functions = prepareFunctions(options.handlers, options.projectDir, scratch);
  functions.ready.catch(() => undefined);
  const { modules } = functions;

  // DynamoDB: dynalite on a port of our choosing, the functions behind the fault proxy.
  const dynamodbPort = await freePort();
  const writes = new WriteLog(jobsTable);
  const usageTable = `${prefix}-usage`;
  const counterRetries = { lostAnswers: 0, amount: 0 };
  const proxy = await startDynamoDbFaultProxy({
    target: `http://127.0.0.1:${dynamodbPort}`,
    onExchange: (e) => {
      writes.observe(e);
      // A quota counter's ADD written but answered with an error: the SDK's retry adds it again.
      if (e.table === usageTable && e.operation === "UpdateItem" && e.fault === "after" && e.upstreamStatus === 200) {
        const request = e.request as { Key?: { key?: { S?: string } }; ExpressionAttributeValues?: Record<string, { N?: string }> };
        if (request.Key?.key?.S?.startsWith("jobs#")) {
          counterRetries.lostAnswers++;
          counterRetries.amount += Number(request.ExpressionAttributeValues?.[":n"]?.N ?? 0);
        }
      }
    },
  });

  // The batcher and the dead-letter function, a process per invocation.
  const functionEnv = Promise.withResolvers<Readonly<Record<string, string>>>();
  const invocations: InvocationReport[] = [];
  let killing = false;
  let batchersKilled = 0;
  let sureKillsArmed = 0;
  const pickKill = ({ functionName, event, ended }: KillQuestion): number | Promise<unknown> | undefined => {
    if (!killing || !functionName.endsWith("-batcher")) return undefined;
    if (batchersKilled + sureKillsArmed < options.killFirst) {
      // Disarmed when the invocation ends without having claimed a job (all of them done already).
      sureKillsArmed++;
      ended.addEventListener("abort", () => sureKillsArmed--, { once: true });
      return writes.nextClaim(jobIdsOf(event), ended);
    }
    if (random() >= options.killFraction) return undefined;
    const [from, to] = options.killWindowMs;
    return from + random() * (to - from);
  };
  const invoker = processInvoker({
    functions: {
      [`${prefix}-batcher`]: { module: modules.batcher, timeoutSeconds: options.lambdaTimeoutSeconds, memoryMb: 1024 },
      [`${prefix}-deadLetter`]: { module: modules.deadLetter, timeoutSeconds: 29, memoryMb: 512 },
    },
    env: () => functionEnv.promise,
    kill: pickKill,
    onInvocation: (report) => {
      invocations.push(report);
      if (report.functionName.endsWith("-batcher") && report.outcome === "killed") batchersKilled++;
    },
    onOutput: (fn, chunk) => writeLog(`[${fn.slice(prefix.length + 1)}] ${chunk.trimEnd()}`),
  });

  const routeQueues = options.models.map((m) => `${prefix}-${m}`);
  let stack: Stack | undefined;
  const subscribers: Subscriber[] = [];
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ ...localClientConfig(`http://127.0.0.1:${dynamodbPort}`), maxAttempts: 10 }));
  try {
    stack = await startStack({
      stage,
      timeScale: options.timeScale,
      // A fixed fleet: the faults under test are the endpoint's and the stores', not scaling's.
      autoscaling: false,
      ports: { dynamodb: dynamodbPort },
      invoke: invoker.invoke,
      functionEndpoints: { dynamodb: proxy.url },
      queueAttributeOverrides: Object.fromEntries([
        ...routeQueues.map((q) => [q, { VisibilityTimeout: String(options.visibilityTimeoutSeconds) }]),
        // The template's DLQs hide a message six times the dead-letter function's 29 s; under
        // faults a dead letter whose handling failed comes back after SQS's default 30 s instead.
        ...(options.mode === "chaos" ? routeQueues.map((q) => [`${q}-dlq`, { VisibilityTimeout: "30" }]) : []),
      ]),
      ...(options.batchingWindowSeconds !== undefined && {
        mappingOverrides: Object.fromEntries(routeQueues.map((q) => [q, { maximumBatchingWindowSeconds: options.batchingWindowSeconds }])),
      }),
      log: stackLog,
      // The HTTP and WebSocket functions' warnings and errors; not serverless-offline's line per request.
      onOfflineOutput: (chunk) => {
        if (/"level":"(WARN|ERROR)"|Error/.test(chunk)) writeLog(`[offline] ${chunk.trimEnd()}`);
      },
    });
    await functions.ready;
    functionEnv.resolve({ ...stack.functionEnv, BATCHLINE_LOG_LEVEL: "WARN", POWERTOOLS_METRICS_NAMESPACE: "batchline", POWERTOOLS_SERVICE_NAME: "batchline" });
    const { http, websocket, sagemaker } = stack.endpoints;
    if (!http || !websocket || !sagemaker) throw new Error("the stack runs without its HTTP, WebSocket or SageMaker endpoint");
    const stackUpAt = Date.now();
    print(`[${elapsed()} s] stack up: ${http}, ${websocket}; DynamoDB ${stack.endpoints.dynamodb} behind ${proxy.url}`);

    // Subscribers: some steady, some dropping and reconnecting.
    const flaky = Math.round(options.subscribers * options.flakyShare);
    for (let i = 0; i < options.subscribers; i++) {
      const [low, high] = options.connectionLifeMs;
      const subscriber = new Subscriber(`${i < flaky ? "flaky" : "steady"}-${i}`, {
        url: websocket,
        apiKey: stack.apiKey,
        nextDropMs: i < flaky && options.faults ? () => low + random() * (high - low) : undefined,
        reconnectDelayMs: () => 100 + random() * 1500,
        random,
      });
      subscribers.push(subscriber);
      subscriber.start();
    }
    await waitFor(() => subscribers.every((s) => s.connected), 60_000, "subscribers connected");

    // Faults on.
    const faultsOnAt = Date.now();
    if (options.faults) {
      proxy.setFaults({ ...options.dynamodbFaults, seed: options.seed });
      const { outage, ...rest } = options.sagemakerFaults;
      await emulatorFaults(sagemaker, {
        ...rest,
        seed: options.seed,
        ...(outage && { outage: { after_seconds: outage.after_wall_seconds * options.timeScale, for_seconds: outage.for_wall_seconds * options.timeScale, kind: outage.kind } }),
      });
      killing = true;
    }

    // Submit, following each accepted job on one subscriber (round robin), and sample job states.
    const accepted = new Set<string>();
    // One job id answered for two submissions: two requests made one job, or one was told another's id.
    const acceptedTwice: { jobId: string; via: string }[] = [];
    const viaCounts = { batch: 0, http: 0, ws: 0 };
    let assign = 0;
    const sampler = new StateSampler(ddb, jobsTable);
    let submitted = false;
    let submitStats: SubmitStats | undefined;
    const submitting = submitAll(
      {
        jobs: options.jobs,
        models: options.models,
        maxTokens: options.maxTokens,
        batchShare: options.batchShare,
        batchLines: options.batchLines,
        wsShare: options.wsShare,
        deadlineShare: options.faults ? options.deadlineShare : 0,
        cancelShare: options.faults ? options.cancelShare : 0,
        concurrency: options.submitConcurrency,
        seed: options.seed,
        random,
      },
      { http, apiKey: stack.apiKey },
      subscribers,
      ({ jobIds, via }) => {
        viaCounts[via] += jobIds.length;
        for (const id of jobIds) {
          if (accepted.has(id)) acceptedTwice.push({ jobId: id, via });
          accepted.add(id);
        }
        // A job submitted over a WebSocket is followed by its submitter already.
        if (via === "ws" || subscribers.length === 0) return;
        const followed = options.followShare >= 1 ? jobIds : jobIds.filter(() => random() < options.followShare);
        for (let i = 0; i < followed.length; i += 100) {
          const subscriber = subscribers[assign++ % subscribers.length] as Subscriber;
          subscriber.follow(followed.slice(i, i + 100));
        }
      },
    ).then((stats) => {
      submitStats = stats;
      submitted = true;
    });
    submitting.catch(() => undefined);

    const submitStarted = Date.now();
    let submitEndedAt: number | undefined;
    let lastProgress = 0;
    for (;;) {
      const states = await sampler.sample();
      if (submitted && submitEndedAt === undefined) {
        submitEndedAt = Date.now();
        print(`[${elapsed()} s] all submitted: ${accepted.size} accepted in ${((submitEndedAt - submitStarted) / 1000).toFixed(1)} s`);
      }
      const open = [...accepted].filter((id) => !isTerminalStatus(states.get(id)));
      if (Date.now() - lastProgress > 10_000) {
        lastProgress = Date.now();
        print(`[${elapsed()} s] ${progressLine(states, accepted.size, open.length, invocations)}`);
        if (submitted && open.length > 0 && open.length <= 3) {
          for (const id of open) print(`    open ${id} ${states.get(id) ?? "no record"}: ${(writes.history.get(id) ?? []).join("; ")}`);
        }
      }
      if (signal?.aborted) throw new Error("chaos run interrupted");
      if (submitted && open.length === 0) break;
      if (submitEndedAt !== undefined && Date.now() - submitEndedAt > options.drainTimeoutMs) {
        print(`[${elapsed()} s] drain deadline passed with ${open.length} jobs not terminal`);
        break;
      }
      const pause = sampler.pauseAfterScan(options.sampleEveryMs);
      await (submitted ? delay(pause) : Promise.race([delay(pause), submitting]));
    }
    await submitting;
    const drainedAt = Date.now();

    // Faults off; every subscriber reconnects if it must and gets what it is owed.
    killing = false;
    proxy.setFaults(undefined);
    await fetch(`${sagemaker}/_emulator/faults`, { method: "DELETE" });
    for (const s of subscribers) s.calm();
    const finalStates = await sampler.sample();
    const owed = (s: Subscriber) => [...s.jobs].filter((id) => isTerminalStatus(finalStates.get(id)) && s.finalStatus.get(id) !== finalStates.get(id));
    // Meanwhile the invocations still running (a batcher topping up, one handed a finished job's
    // message again) end as they would: their reports (RSS, CPU, outcome) count, and the messages
    // they hold are deleted, rather than killed with the stack.
    const invocationsEnded = waitFor(() => invoker.running() === 0, (options.lambdaTimeoutSeconds + 10) * 1000, "invocations to end").catch((error: unknown) => {
      print(`[${elapsed()} s] ${String(error)}; ${invoker.running()} still running are killed with the stack`);
    });
    // A batcher killed after writing a final state but before telling the subscribers leaves its
    // message invisible until the visibility timeout; its redelivery tells them (at least once).
    const redeliveredBy = Date.now() + (options.visibilityTimeoutSeconds + options.lambdaTimeoutSeconds + 30) * 1000;
    while (subscribers.some((s) => owed(s).length > 0) && Date.now() < redeliveredBy) {
      const depths = await queueDepths(stack, routeQueues);
      if (Object.values(depths).every((n) => n === 0) && invoker.running() === 0) break;
      await delay(1000);
    }
    await waitFor(() => subscribers.every((s) => s.connected && s.settled && owed(s).length === 0), options.notifyTimeoutMs, "final events").catch(() => undefined);
    await invocationsEnded;

    // Account for every job, read straight from dynalite.
    const items = await scanAll<JobItem>(ddb, jobsTable);
    const byId = new Map(items.map((i) => [i.job_id, i]));
    const notTerminal = items.filter((i) => !isTerminalStatus(i.status));
    const missing = [...accepted].filter((id) => !byId.has(id));
    const failedWithoutReason = items.filter((i) => i.status === "FAILED" && !(i.error?.code && i.error.message));
    const doubleResults = [...writes.resultWrites].filter(([, n]) => n > 1);
    const doubleTerminal = [...writes.terminalWrites].filter(([, n]) => n > 1);
    const unobservedResults = items.filter((i) => i.status === "SUCCEEDED" && !writes.resultWrites.has(i.job_id));
    const streamBackwards = subscribers.flatMap((s) => s.tracker.backwards);
    const allBackwards: Backwards[] = [...writes.tracker.backwards, ...sampler.tracker.backwards, ...streamBackwards];
    const backwardJobs = new Set(allBackwards.map((b) => b.jobId));

    const connectedAtEnd = subscribers.filter((s) => s.connected);
    const missingFinals = connectedAtEnd.map((s) => ({ name: s.name, subscriber: s, missing: [...s.jobs].filter((id) => s.finalStatus.get(id) !== TERMINAL_EVENT[byId.get(id)?.status ?? ""]) }));
    const notified = missingFinals.filter((m) => m.missing.length === 0).length;

    const statuses = countBy(items, (i) => i.status);
    const failedReasons = countBy(items.filter((i) => i.status !== "SUCCEEDED" && isTerminalStatus(i.status)), (i) => `${i.status}:${i.error?.code ?? "none"}`);
    const claims = [...writes.claims.values()];
    const batcherRuns = invocations.filter((r) => r.functionName.endsWith("-batcher"));
    const deadLetterRuns = invocations.filter((r) => r.functionName.endsWith("-deadLetter"));
    const rss = batcherRuns.map((r) => r.peakRssBytes).filter((b) => b > 0).sort((a, b) => a - b);
    const mb = (bytes: number | undefined) => (bytes === undefined ? null : Math.round((bytes / 1024 / 1024) * 10) / 10);
    const emulator = await emulatorCounters(sagemaker);
    const usage = await ddb.send(new GetCommand({ TableName: usageTable, Key: { key: "jobs#dev" } }));
    const queuesLeft = await queueDepths(stack, [...routeQueues, ...routeQueues.map((q) => `${q}-dlq`)]);
    const mainCpu = process.cpuUsage(cpuAtStart);
    const offlineCpuMs = await childCpuMs("offline start");
    const lastTerminalAt = drainedAt;
    const processingSeconds = (lastTerminalAt - submitStarted) / 1000;

    const lost = notTerminal.length + missing.length;
    const notifiedRatio = connectedAtEnd.length === 0 ? 0 : notified / connectedAtEnd.length;
    const passed =
      items.length >= options.jobs &&
      lost === 0 &&
      acceptedTwice.length === 0 &&
      doubleResults.length === 0 &&
      backwardJobs.size === 0 &&
      notifiedRatio === 1 &&
      failedWithoutReason.length === 0;
    const results: ChaosResults = {
      jobs: items.length,
      lost,
      double_writes: doubleResults.length,
      backwards: backwardJobs.size,
      notified_ratio: round(notifiedRatio, 4),
      failed_without_reason: failedWithoutReason.length,
      passed,
      mode: options.mode,
      seed: options.seed,
      stage,
      accepted: accepted.size,
      accepted_twice: acceptedTwice.length,
      accepted_twice_detail: acceptedTwice.slice(0, 20),
      accepted_via: viaCounts,
      statuses,
      failed_reasons: failedReasons,
      duration_s: round((Date.now() - started) / 1000, 1),
      stack_start_s: round((stackUpAt - started) / 1000, 1),
      submit_s: round(((submitEndedAt ?? drainedAt) - submitStarted) / 1000, 1),
      drain_s: round((drainedAt - submitStarted) / 1000, 1),
      throughput_jobs_per_s: round(items.filter((i) => isTerminalStatus(i.status)).length / processingSeconds, 1),
      retries: claims.reduce((sum, n) => sum + Math.max(0, n - 1), 0),
      jobs_claimed_more_than_once: claims.filter((n) => n > 1).length,
      max_claims_of_a_job: Math.max(0, ...claims),
      dlq: {
        dead_letter_invocations: deadLetterRuns.length,
        dead_letter_records: deadLetterRuns.reduce((sum, r) => sum + r.records, 0),
        failed_retries_exhausted: items.filter((i) => i.error?.code === "retries_exhausted").length,
      },
      lost_detail: {
        not_terminal: notTerminal.slice(0, 20).map((i) => ({ job_id: i.job_id, status: i.status, attempt: i.attempt, writes: writes.history.get(i.job_id) ?? [] })),
        accepted_without_record: missing.slice(0, 20).map((id) => ({ job_id: id, writes: writes.history.get(id) ?? [] })),
      },
      double_writes_detail: doubleResults.slice(0, 20),
      double_terminal_writes: doubleTerminal.length,
      unobserved_results: unobservedResults.length,
      backwards_detail: {
        dynamodb_writes: writes.tracker.backwards.length,
        dynamodb_samples: sampler.tracker.backwards.length,
        samples: sampler.scans,
        sampling_s: round(sampler.scanMs / 1000, 1),
        event_streams: streamBackwards.length,
        examples: allBackwards.slice(0, 20),
      },
      notifications: {
        subscribers: subscribers.length,
        connected_at_end: connectedAtEnd.length,
        fully_notified: notified,
        missing_finals: missingFinals
          .filter((m) => m.missing.length > 0)
          .map((m) => ({
            subscriber: m.name,
            count: m.missing.length,
            // Why: the frame that subscribes it again was never answered, or it was and no final event came.
            in_unanswered_frames: m.missing.filter((id) => m.subscriber.unanswered.has(id)).length,
            acknowledged_without_final: m.missing.filter((id) => m.subscriber.acknowledged.has(id)).length,
            error_replies: Object.fromEntries(m.subscriber.errorKinds),
            examples: m.missing.slice(0, 5).map((id) => ({ job_id: id, status: byId.get(id)?.status, writes: writes.history.get(id) ?? [] })),
          })),
        final_events: subscribers.reduce((sum, s) => sum + s.finalEvents, 0),
        stale_events: subscribers.reduce((sum, s) => sum + s.staleEvents, 0),
        followed_jobs: subscribers.reduce((sum, s) => sum + s.jobs.size, 0),
        events: subscribers.reduce((sum, s) => sum + s.events, 0),
        drops: subscribers.reduce((sum, s) => sum + s.drops, 0),
        connects: subscribers.reduce((sum, s) => sum + s.connects, 0),
        refused_connects: subscribers.reduce((sum, s) => sum + s.refusedConnects, 0),
        error_replies: subscribers.reduce((sum, s) => sum + s.errorReplies, 0),
        error_kinds: mergeCounts(subscribers.map((s) => s.errorKinds)),
        resent_frames: subscribers.reduce((sum, s) => sum + s.resentFrames, 0),
      },
      batcher: {
        invocations: batcherRuns.length,
        by_outcome: countBy(batcherRuns, (r) => r.outcome),
        records_delivered: batcherRuns.reduce((sum, r) => sum + r.records, 0),
        peak_rss_mb: mb(rss.at(-1)),
        rss_p50_mb: mb(rss[Math.floor(rss.length / 2)]),
        rss_p95_mb: mb(rss[Math.floor(rss.length * 0.95)]),
        init_ms_p50: Math.round(median(batcherRuns.flatMap((r) => (r.initMs === undefined ? [] : [r.initMs])))),
        lambda_timeout_s: options.lambdaTimeoutSeconds,
        visibility_timeout_s: options.visibilityTimeoutSeconds,
      },
      faults: {
        enabled: options.faults,
        dynamodb: { ...proxy.stats(), settings: options.faults ? options.dynamodbFaults : null, answers_lost_after_a_job_write: writes.lostAnswers },
        sagemaker: { settings: options.faults ? options.sagemakerFaults : null, ...emulator },
        batcher_kill_fraction: options.faults ? options.killFraction : 0,
        subscriber_drops: subscribers.reduce((sum, s) => sum + s.drops, 0),
        faults_on_s: round((drainedAt - faultsOnAt) / 1000, 1),
      },
      submissions: submitStats ?? null,
      cpu_s: {
        // What the machine spent, by process: this one (dynalite, fauxqs, the emulator, the proxy, the clients), osls offline (HTTP and WebSocket functions), the batcher and dead-letter runners.
        chaos_and_emulators: round((mainCpu.user + mainCpu.system) / 1e6, 1),
        offline_functions: offlineCpuMs === undefined ? null : round(offlineCpuMs / 1000, 1),
        batcher_runners: round(batcherRuns.reduce((sum, r) => sum + r.cpuMs, 0) / 1000, 1),
        batcher_runner_init_p50_ms: Math.round(median(batcherRuns.flatMap((r) => (r.initMs === undefined ? [] : [r.initMs])))),
      },
      quota_jobs_in_flight_after: Number(usage.Item?.used ?? 0),
      quota_counter_lost_answers: { updates: counterRetries.lostAnswers, amount: counterRetries.amount },
      queues_left: queuesLeft,
      settings: { timeScale: options.timeScale, models: options.models, maxTokens: options.maxTokens, subscribers: options.subscribers, handlers: options.handlers },
    };
    if (options.outDir !== undefined) writeFileSync(join(options.outDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
    return results;
  } finally {
    for (const s of subscribers) s.close();
    killing = false;
    await stack?.stop().catch((error: unknown) => print(`stopping the stack: ${String(error)}`));
    invoker.killAll();
    ddb.destroy();
    await proxy.close().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The jobs an SQS event carries (the job messages' job_id). */
function jobIdsOf(event: { readonly Records: readonly unknown[] }): string[] {
  return event.Records.flatMap((record) => {
    const body = (record as { body?: unknown }).body;
    const jobId = typeof body === "string" ? parseJsonObject(body)?.job_id : undefined;
    return typeof jobId === "string" ? [jobId] : [];
  });
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The sampler waits at least this many times as long as its last scan took before the next one:
 * dynalite runs in this process beside fauxqs, the emulator and the proxy, which every function
 * call goes through, and scans of thousands of jobs every 3 s would take a sizeable share of it.
 */
const PAUSE_PER_SCAN_TIME = 10;

/** Samples every job's status straight from dynalite, following each for moves backwards. */
class StateSampler {
  readonly tracker = new StatusTracker("dynamodb samples");
  scans = 0;
  scanMs = 0;
  #lastScanMs = 0;
  readonly #ddb: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(ddb: DynamoDBDocumentClient, table: string) {
    this.#ddb = ddb;
    this.#table = table;
  }

  /** How long to wait before the next sample: at least `everyMs`, longer when scans are slow. */
  pauseAfterScan(everyMs: number): number {
    return Math.max(everyMs, PAUSE_PER_SCAN_TIME * this.#lastScanMs);
  }

  async sample(): Promise<Map<string, string>> {
    const started = performance.now();
    const items = await scanAll<{ job_id: string; status: string }>(this.#ddb, this.#table, "job_id, #s");
    this.#lastScanMs = performance.now() - started;
    this.scans++;
    this.scanMs += this.#lastScanMs;
    const states = new Map<string, string>();
    for (const { job_id, status } of items) {
      states.set(job_id, status);
      this.tracker.observe(job_id, status);
    }
    return states;
  }
}

async function scanAll<T>(ddb: DynamoDBDocumentClient, table: string, projection?: string): Promise<T[]> {
  const items: T[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out: ScanCommandOutput = await ddb.send(
      new ScanCommand({
        TableName: table,
        ExclusiveStartKey: start,
        ...(projection !== undefined && { ProjectionExpression: projection, ExpressionAttributeNames: { "#s": "status" } }),
      }),
    );
    items.push(...((out.Items ?? []) as T[]));
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
  return items;
}

async function emulatorFaults(sagemaker: string, settings: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${sagemaker}/_emulator/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(settings) });
  if (!response.ok) throw new Error(`POST /_emulator/faults: ${response.status} ${await response.text()}`);
}

async function emulatorCounters(sagemaker: string): Promise<Record<string, number>> {
  const stats = (await (await fetch(`${sagemaker}/_emulator/stats`)).json()) as { components: Record<string, unknown>[] };
  const sum = (name: string) => stats.components.reduce((total, c) => total + (typeof c[name] === "number" ? (c[name] as number) : 0), 0);
  return {
    invocations: sum("invocations"),
    throttles: sum("throttles"),
    invocation5xxErrors: sum("invocation5xxErrors"),
    invocation4xxErrors: sum("invocation4xxErrors"),
    invocationModelErrors: sum("invocationModelErrors"),
  };
}

async function queueDepths(stack: Stack, names: readonly string[]): Promise<Record<string, number>> {
  const sqs = new SQSClient({ ...localClientConfig(stack.endpoints.sqs), useQueueUrlAsEndpoint: false });
  try {
    const depths: Record<string, number> = {};
    for (const name of names) {
      const url = stack.queues.find((q) => q.name === name)?.url;
      if (!url) continue;
      const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"] }));
      const a = out.Attributes ?? {};
      depths[name.slice(stack.prefix.length + 1)] =
        Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
    }
    return depths;
  } finally {
    sqs.destroy();
  }
}

/** CPU (ms) of this process's child whose command line contains `marker` (Linux /proc); undefined when none. */
async function childCpuMs(marker: string): Promise<number | undefined> {
  const pids = await readdir("/proc").catch(() => [] as string[]);
  for (const pid of pids.filter((p) => /^\d+$/.test(p))) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid !== process.pid) continue;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ");
    if (cmdline.includes(marker)) return procCpuMs(stat);
  }
  return undefined;
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(100);
  }
}

function progressLine(states: ReadonlyMap<string, string>, accepted: number, open: number, invocations: readonly InvocationReport[]): string {
  const counts = countBy([...states.values()], (s) => s);
  const runs = invocations.filter((r) => r.functionName.endsWith("-batcher"));
  const killed = runs.filter((r) => r.outcome === "killed").length;
  return `${accepted} accepted, ${open} open; ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}; batcher runs ${runs.length} (${killed} killed)`;
}

function mergeCounts(maps: readonly ReadonlyMap<string, number>[]): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const map of maps) for (const [k, v] of map) merged[k] = (merged[k] ?? 0) + v;
  return merged;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

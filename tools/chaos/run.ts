import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { localClientConfig } from "#local/aws";
import { seededRandom } from "#local/sagemaker/random";
import type { Stack } from "#local/stack";
import { LANES, laneQueueSuffix } from "#shared/core/lanes";
import { accountFor, type JobRecord } from "./accounting.ts";
import { startChaosStack } from "./chaos-stack.ts";
import { drain } from "./drain.ts";
import { startWatchedDynamoDb } from "./dynamodb-watch.ts";
import { faultsOff, faultsOn } from "./faults.ts";
import { awaitFinals } from "./finals.ts";
import { FunctionRunners } from "./function-runners.ts";
import { prepareFunctions } from "./functions.ts";
import { functionLog, runConsole } from "./logs.ts";
import { measureAtEnd } from "./measurements.ts";
// The scan read whole items: the accounting types only the fields it reads.
import type { JobRecord as StoredJob } from "#shared/core/jobs";
import type { ChaosOptions } from "./options.ts";
import { chaosResults, type ChaosResults } from "./results.ts";
import { scanAll, StateSampler } from "./sampler.ts";
import { type RunningStoreCrashes, startSqsWatch, startStoreCrashes } from "./store-crashes.ts";
import { Submissions } from "./submissions.ts";
import { Subscriber } from "./subscribers.ts";
import { waitFor } from "./wait-for.ts";

/** After a crashed store is back, how long its toll (retries, redeliveries) goes on being counted. */
const STORE_CRASH_SETTLE_MS = 5000;

// What a caller of runChaos needs, from one place (test/e2e/chaos.test.ts imports them from here).
export { defaultChaosOptions, type ChaosOptions } from "./options.ts";
export type { ChaosResults } from "./results.ts";

/**
 * One chaos run, from start to verdict: the stack up with DynamoDB behind the fault proxy and the
 * batcher in processes of its own, subscribers connected, every fault on while the jobs are
 * submitted and drained, the faults off while the subscribers get their final events, then every
 * job accounted for (accounting.ts) and the figures written to `<outDir>/latest.json`.
 */
export async function runChaos(options: ChaosOptions, print: (line: string) => void = () => undefined, signal?: AbortSignal): Promise<ChaosResults> {
  const started = Date.now();
  const cpuAtStart = process.cpuUsage();
  const out = runConsole(print, started);
  const random = seededRandom(`chaos\u0000${options.seed}`);
  const stage = `chaos${Date.now().toString(36).slice(-5)}${Math.floor(random() * 1e6).toString(36)}`;
  const prefix = `batchline-${stage}`;
  const jobsTable = `${prefix}-jobs`;
  // Bundles go under node_modules, as Lambda ships them beside their packages (llama3-tokenizer-js is required at run time).
  const cacheDir = join(options.projectDir, "node_modules", ".cache");
  mkdirSync(cacheDir, { recursive: true });
  const scratch = mkdtempSync(join(cacheDir, "batchline-chaos-"));
  if (options.outDir !== undefined) mkdirSync(options.outDir, { recursive: true });
  const writeLog = functionLog(options.outDir);
  process.env.BATCHLINE_LOG_LEVEL ??= "WARN";

  print(`chaos ${options.mode}: ${options.jobs} jobs, seed ${options.seed}, faults ${options.faults ? "on" : "off"}, stage ${stage}`);
  // Bundled while the stack starts; the first invocation waits for both.
  const functions = prepareFunctions(options.handlers, options.projectDir, scratch);
  functions.ready.catch(() => undefined);

  const dynamodb = await startWatchedDynamoDb(prefix);
  const sqs = await startSqsWatch();
  const crashSchedule = options.faults ? options.storeCrashes : {};
  // The stack's warnings (pollers' failed SQS calls among them), counted for the store crashes' toll.
  const stackWarnings = { lines: 0 };
  const logLine = (line: string) => {
    if (line.startsWith("[stack]")) stackWarnings.lines++;
    writeLog(line);
  };
  const runners = new FunctionRunners({ options, prefix, modules: functions.modules, writes: dynamodb.writes, random, writeLog });
  // Both lanes of each route: batch files go to the batch lane, single jobs to the interactive one.
  const routeQueues = options.models.flatMap((m) => LANES.map((lane) => `${prefix}-${m}${laneQueueSuffix(lane)}`));
  let stack: Stack | undefined;
  let crashes: RunningStoreCrashes | undefined;
  const subscribers: Subscriber[] = [];
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ ...localClientConfig(`http://127.0.0.1:${dynamodb.port}`), maxAttempts: 10 }));
  try {
    stack = await startChaosStack({
      options,
      stage,
      routeQueues,
      dynamodbPort: dynamodb.port,
      functionsDynamoDb: dynamodb.proxy.url,
      sqsPort: sqs.port,
      functionsSqs: sqs.proxy.url,
      storeProcesses: Object.keys(crashSchedule).length > 0,
      invoke: runners.invoker.invoke,
      writeLog: logLine,
    });
    await functions.ready;
    runners.setEnv({ ...stack.functionEnv, BATCHLINE_LOG_LEVEL: "WARN", POWERTOOLS_METRICS_NAMESPACE: "batchline", POWERTOOLS_SERVICE_NAME: "batchline" });
    const { http, websocket, sagemaker } = stack.endpoints;
    if (!http || !websocket || !sagemaker) throw new Error("the stack runs without its HTTP, WebSocket or SageMaker endpoint");
    const stackUp = Date.now();
    out.say(`stack up: ${http}, ${websocket}; DynamoDB ${stack.endpoints.dynamodb} behind ${dynamodb.proxy.url}`);

    subscribers.push(...startSubscribers(options, websocket, stack.apiKey, random));
    await waitFor(() => subscribers.every((s) => s.connected), 60_000, "subscribers connected");

    const faultSources = { proxy: dynamodb.proxy, sagemaker, runners };
    const faultsOnAt = Date.now();
    await faultsOn(options, faultSources);

    const sampler = new StateSampler(ddb, jobsTable);
    const submissions = new Submissions(options, { http, apiKey: stack.apiKey }, subscribers, random);
    if (stack.stores) {
      crashes = startStoreCrashes({
        stores: stack.stores,
        schedule: crashSchedule,
        console: out,
        settleMs: STORE_CRASH_SETTLE_MS,
        counters: () => ({
          // Each SDK attempt by a function that found no server (answered 502 by the proxy).
          dynamodb_attempts_unanswered: dynamodb.proxy.stats().unreachable,
          sqs_attempts_unanswered: sqs.proxy.stats().unreachable,
          stack_warnings: stackWarnings.lines,
          batcher_invocations_failed: runners.invocations.filter((r) => r.functionName.endsWith("-batcher") && r.outcome !== "ok" && r.outcome !== "killed").length,
          sampler_scans_failed: sampler.failedScans,
        }),
      });
    }
    const submitEnded = await drain({ options, submissions, sampler, history: dynamodb.writes.history, invocations: runners.invocations, console: out, signal });
    await submissions.done;
    const drained = Date.now();
    await crashes?.end();

    await faultsOff(faultSources);
    for (const s of subscribers) s.calm();
    const states = await sampler.sample();
    await awaitFinals({ options, stack, routeQueues, invoker: runners.invoker, subscribers, states, console: out });

    // Every job, read straight from dynalite.
    const records = await scanAll<JobRecord>(ddb, jobsTable);
    const account = accountFor({
      expectedJobs: options.jobs,
      accepted: submissions.accepted,
      acceptedTwice: submissions.acceptedTwice,
      records,
      writes: dynamodb.writes,
      backwards: { writes: dynamodb.writes.tracker.backwards, samples: sampler.tracker.backwards, streams: subscribers.flatMap((s) => s.tracker.backwards) },
      subscribers,
    });
    const measured = await measureAtEnd({ stack, sagemaker, ddb, routeQueues, cpuAtStart, records: records as unknown as readonly StoredJob[] });
    const results = chaosResults({
      options,
      stage,
      account,
      acceptedVia: submissions.via,
      submitStats: submissions.stats,
      times: { started, stackUp, faultsOn: faultsOnAt, submitStarted: submissions.startedAt, submitEnded, drained },
      sampler,
      subscribers,
      invocations: runners.invocations,
      dynamodb: { stats: dynamodb.proxy.stats(), jobAnswersLost: dynamodb.writes.lostAnswers, counterRetries: dynamodb.counterRetries, usageRequests: dynamodb.usageRequests },
      storeCrashes: crashes?.figures() ?? {},
      measured,
    });
    if (options.outDir !== undefined) writeFileSync(join(options.outDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
    return results;
  } finally {
    for (const s of subscribers) s.close();
    runners.killing = false;
    await crashes?.end().catch((error: unknown) => print(`ending the store crashes: ${String(error)}`));
    await stack?.stop().catch((error: unknown) => print(`stopping the stack: ${String(error)}`));
    runners.invoker.killAll();
    ddb.destroy();
    await dynamodb.proxy.close().catch(() => undefined);
    await sqs.proxy.close().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The run's subscribers, connecting: a share of them flaky (dropping and reconnecting, while faults are on), the rest steady. */
function startSubscribers(options: ChaosOptions, url: string, apiKey: string, random: () => number): Subscriber[] {
  const flaky = Math.round(options.subscribers * options.flakyShare);
  const [low, high] = options.connectionLifeMs;
  return Array.from({ length: options.subscribers }, (_, i) => {
    const subscriber = new Subscriber(`${i < flaky ? "flaky" : "steady"}-${i}`, {
      url,
      apiKey,
      nextDropMs: i < flaky && options.faults ? () => low + random() * (high - low) : undefined,
      reconnectDelayMs: () => 100 + random() * 1500,
      random,
    });
    subscriber.start();
    return subscriber;
  });
}

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetQueueAttributesCommand, PurgeQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { laneOfQueue, loadRouteCatalog } from "#shared/config";
import { LANES, type Lane, laneQueueSuffix } from "#shared/core/lanes";
import type { RouteSettings } from "#shared/core/route-settings";
import type { Component, Route } from "#shared/core/routes";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "#local/aws";
import type { Logger } from "#local/log";
import { RequestMeter } from "#local/request-meter";
import { type Stack, startStack } from "#local/stack";
import { gpuSnapshot } from "./gpu.ts";
import { drivePipeline, type PipelineTarget } from "./pipeline-driver.ts";
import type { Policy } from "./policies.ts";
import type { PromptBook } from "./prompts.ts";

/** A batcher invocation, wall clock (epoch ms), and the lane of the queue that delivered it. */
export type Invocation = { records: number; startedAt: number; lane: Lane; endedAt?: number; error?: string | undefined };

/** One embedded stack set up for one policy. */
export type PolicyStack = {
  readonly policy: Policy;
  readonly stack: Stack;
  readonly target: PipelineTarget;
  readonly route: Route;
  readonly component: Component;
  readonly sagemakerUrl: string;
  /** The batcher settings the stack runs with, as GET /v1/routes/{model}/settings says. */
  readonly settings: RouteSettings;
  readonly settingsSource: string;
  /** The invocations its route queue's pollers made so far; endedAt once each has answered. */
  readonly invocations: readonly Invocation[];
  /** What the stack's functions and pollers asked of AWS so far (infra/local/request-meter.ts). */
  readonly meter: RequestMeter;
  /** The event source mapping of the route's interactive lane (the bench's lone jobs), as the pollers run it; the batch lane's is the same. */
  readonly mapping: { readonly batchSize: number; readonly maximumBatchingWindowSeconds: number; readonly maximumConcurrency: number | undefined };
  /**
   * A clean start for the next run: cancels the jobs still unanswered (so that no batcher starts
   * one it already holds), empties the route's queues and waits until nothing runs on the GPU.
   */
  settle(unanswered: readonly string[], timeoutMs: number): Promise<void>;
  /**
   * After the stack's last run: empties the route's queues and closes the SageMaker emulator, so that the
   * calls still running fail at once instead of being waited for. Nothing is measured after it.
   */
  abandon(): Promise<void>;
  stop(): Promise<void>;
};

export type StackStart = {
  readonly stage: string;
  readonly projectDir: string;
  readonly model: string;
  /** A routes file whose components run the static-batch engine (staticRoutesFile). */
  readonly staticRoutesFile: string;
  readonly prompts: PromptBook;
  readonly log?: Logger;
  /** NODE_OPTIONS of osls offline (a CPU profile of it: cpu-capture.ts). */
  readonly offlineNodeOptions?: string;
};

/** A routes file as parsed YAML, loosely typed: a variant changes a few fields of it. */
export type RawRoutesFile = {
  components: Record<string, Record<string, unknown> & { engine: string; kv_admission?: string }>;
  routes: Record<string, { components: string[] }>;
};

/**
 * infra/routes.yml with `edit` applied, written to `outDir/fileName` and checked (a variant that
 * is not valid fails here, with the reason). Queues and mappings do not change with it.
 */
export async function writeRoutesVariant(projectDir: string, outDir: string, fileName: string, note: string, edit: (raw: RawRoutesFile) => void): Promise<string> {
  const raw = parseYaml(await readFile(join(projectDir, "infra", "routes.yml"), "utf8")) as RawRoutesFile;
  edit(raw);
  const file = join(outDir, fileName);
  await writeFile(file, `# Written by npm run bench: infra/routes.yml ${note}.\n${stringifyYaml(raw)}`);
  loadRouteCatalog(file);
  return file;
}

/** The components of `model`'s route, in a routes file as parsed. */
export function routeComponents(raw: RawRoutesFile, model: string): RawRoutesFile["components"][string][] {
  const route = raw.routes[model];
  if (!route) throw new Error(`infra/routes.yml has no route ${model}`);
  return route.components.flatMap((name) => raw.components[name] ?? []);
}

/**
 * The project's routes file with the components of `model`'s route on the static-batch engine
 * (lmi-dynamic); every other route and component as it is.
 */
export function writeStaticRoutesFile(projectDir: string, model: string, outDir: string): Promise<string> {
  return writeRoutesVariant(projectDir, outDir, "routes.static.yml", `with ${model} on the static-batch engine`, (raw) => {
    for (const component of routeComponents(raw, model)) {
      component.engine = "lmi-dynamic";
      delete component.kv_admission;
    }
  });
}

export async function startPolicyStack(policy: Policy, options: StackStart): Promise<PolicyStack> {
  const routesFile = policy.engine === "static" ? options.staticRoutesFile : join(options.projectDir, "infra", "routes.yml");
  const catalog = loadRouteCatalog(routesFile);
  const route = catalog.routes.get(options.model);
  const component = route?.components[0];
  if (!route || !component) throw new Error(`routes file ${routesFile} has no route ${options.model} with a component`);
  // The route's queue of each lane (shared/core/lanes.ts): the bench's lone jobs ride the
  // interactive lane, a batch file's lines the batch lane. A policy's mapping is the route's, on both.
  const queueNames = LANES.map((lane) => `batchline-${options.stage}-${options.model}${laneQueueSuffix(lane)}`);
  const interactiveQueue = `batchline-${options.stage}-${options.model}${laneQueueSuffix("interactive")}`;
  const invocations: Invocation[] = [];
  const meter = new RequestMeter();
  const mapping = policy.mapping;
  const stack = await startStack({
    projectDir: options.projectDir,
    stage: options.stage,
    dataDir: undefined,
    timeScale: 1,
    // The policies are compared on the route's one copy, as the engine alone runs it.
    autoscaling: false,
    routesFile,
    ...(mapping && { mappingOverrides: Object.fromEntries(queueNames.map((name) => [name, mapping])) }),
    ...(policy.batcherReservedConcurrency !== undefined && { reservedConcurrency: { batcher: policy.batcherReservedConcurrency } }),
    ...(options.log && { log: options.log }),
    ...(options.offlineNodeOptions !== undefined && { offlineNodeOptions: options.offlineNodeOptions }),
    meter,
    // Several stacks start at once on a shared 2-core machine: osls offline took over 120 s there.
    offlineReadyTimeoutMs: 300_000,
    onInvocation: ({ queueArn, records, startedAt, ended }) => {
      const queueName = queueNames.find((name) => queueArn?.endsWith(`:${name}`));
      if (queueName === undefined) return;
      const invocation: Invocation = { records, startedAt, lane: laneOfQueue(queueName) };
      invocations.push(invocation);
      void ended.then(({ endedAt, error }) => Object.assign(invocation, { endedAt, error }));
    },
  });
  try {
    const { http, websocket, sagemaker } = stack.endpoints;
    if (!http || !websocket || !sagemaker) throw new Error("the stack runs without its HTTP, WebSocket or SageMaker endpoint");
    const target: PipelineTarget = { http, websocket, apiKey: stack.apiKey, model: options.model };
    const view = await putSettings(target, policy.settings?.(route));
    const polled = stack.mappings.find((m) => m.queueName === interactiveQueue);
    if (!polled) throw new Error(`the stack has no event source mapping for ${interactiveQueue}`);
    const queueUrls = queueNames.map((name) => {
      const queue = stack.queues.find((q) => q.name === name);
      if (!queue) throw new Error(`the stack has no queue ${name}`);
      return queue.url;
    });
    await warmUp(target, options.prompts);
    const sqs = new SQSClient({ endpoint: stack.endpoints.sqs, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, useQueueUrlAsEndpoint: false });
    return {
      policy,
      stack,
      target,
      route,
      component,
      sagemakerUrl: sagemaker,
      settings: view.settings,
      settingsSource: view.source,
      invocations,
      meter,
      mapping: polled,
      settle: async (unanswered, timeoutMs) => {
        await cancelJobs(target, unanswered);
        await settle(sqs, queueUrls, sagemaker, component.name, timeoutMs);
      },
      abandon: async () => {
        await Promise.all(queueUrls.map((url) => sqs.send(new PurgeQueueCommand({ QueueUrl: url }))));
        await stack.sagemaker?.close();
      },
      stop: async () => {
        sqs.destroy();
        await stack.stop();
      },
    };
  } catch (error) {
    await stack.stop().catch(() => undefined);
    throw error;
  }
}

/**
 * A stack per policy, `atOnce` at a time (starting one is CPU-bound: osls, esbuild), each tried
 * twice (a loaded machine can miss osls offline's start deadline). Stacks that did start are in
 * `into` even when another fails, so that the caller stops them.
 */
export async function startPolicyStacks(
  policies: readonly Policy[],
  options: Omit<StackStart, "stage"> & { readonly runId: string; readonly atOnce: number; readonly into: Map<string, PolicyStack>; readonly onLine: (line: string) => void },
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < policies.length) {
      const index = next++;
      const policy = policies[index] as Policy;
      for (let attempt = 1; ; attempt++) {
        try {
          const stage = `bench${options.runId}${String.fromCharCode(97 + index)}${attempt}`;
          options.into.set(policy.name, await startPolicyStack(policy, { ...options, stage }));
          options.onLine(`  ${policy.name} ready`);
          break;
        } catch (error) {
          if (attempt >= 2) throw error;
          options.onLine(`  ${policy.name} did not start (${error instanceof Error ? error.message.split("\n")[0] : String(error)}); again`);
        }
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(options.atOnce, policies.length) }, worker));
  const failed = settled.find((r) => r.status === "rejected");
  if (failed?.status === "rejected") throw failed.reason;
}

/** Stores the batcher's knobs through the ops API (or reads the defaults when there are none to set). */
export async function putSettings(target: PipelineTarget, settings: Partial<RouteSettings> | undefined): Promise<{ settings: RouteSettings; source: string }> {
  const url = `${target.http}/v1/routes/${encodeURIComponent(target.model)}/settings`;
  const response = await fetch(url, {
    method: settings ? "PUT" : "GET",
    headers: { authorization: `Bearer ${target.apiKey}`, "content-type": "application/json" },
    body: settings ? JSON.stringify(settings) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${settings ? "PUT" : "GET"} ${url}: ${response.status} ${text}`);
  return JSON.parse(text) as { settings: RouteSettings; source: string };
}

/** A few short jobs through the whole pipeline: every function loaded, every client connected. */
export async function warmUp(target: PipelineTarget, prompts: PromptBook): Promise<void> {
  const trace = Array.from({ length: 4 }, (_, index) => ({ index, atMs: index * 200, promptTokens: 16, maxTokens: 4 }));
  const { outcomes } = await drivePipeline(target, trace, { prompts, untilMs: 60_000 });
  const failed = outcomes.filter((o) => o.status !== "succeeded");
  if (failed.length > 0) throw new Error(`warm-up jobs did not succeed: ${failed.map((o) => `${o.status} ${o.error ?? ""}`).join("; ")}`);
}

/** DELETE /v1/jobs/{id} for each, a few at a time; a job that finished meanwhile answers 409, which is fine. */
async function cancelJobs(target: PipelineTarget, jobIds: readonly string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobIds.length) {
      const id = jobIds[next++] as string;
      const response = await fetch(`${target.http}/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE", headers: { authorization: `Bearer ${target.apiKey}` } });
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

const QUIET_MS = 1_500;

async function settle(sqs: SQSClient, queueUrls: readonly string[], sagemakerUrl: string, component: string, timeoutMs: number): Promise<void> {
  const purge = () => Promise.all(queueUrls.map((url) => sqs.send(new PurgeQueueCommand({ QueueUrl: url }))));
  await purge();
  const deadline = performance.now() + timeoutMs;
  let quietSince: number | undefined;
  while (performance.now() < deadline) {
    const [gpu, ...queues] = await Promise.all([
      gpuSnapshot(sagemakerUrl, component),
      ...queueUrls.map((url) => sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }))),
    ]);
    const messages = queues.reduce((sum, q) => sum + Number(q.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(q.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0), 0);
    // Messages a batcher still held when the queue was purged may be requeued: purge those too.
    if (messages > 0) await purge();
    if (gpu.outstanding === 0 && messages === 0) {
      quietSince ??= performance.now();
      if (performance.now() - quietSince >= QUIET_MS) return;
    } else {
      quietSince = undefined;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the stack did not settle within ${timeoutMs} ms`);
}

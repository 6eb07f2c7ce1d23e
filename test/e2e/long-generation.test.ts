import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InvocationReport, type KillQuestion, processInvoker } from "#local/process-invoker";
import { type Stack, startStack } from "#local/stack";
import { localClientConfig, pollUntil } from "../helpers/local-aws.ts";

// Generations longer than one invocation (issue 17 item 4) through the whole embedded stack: real
// SDK clients, the SageMaker emulator cutting every call at max_invocation_seconds as SageMaker
// does, and the batcher in a process of its own per invocation (as the chaos suite runs it), so
// that one can be SIGKILLed mid-generation. 16 000 tokens on the Llama-3.1-8B route take about
// 107 s of simulated GPU time alone on a copy, past the 60 s limit: the job must run over several
// calls. The emulator's clock runs 10 times faster than the wall (its time scale), which leaves the
// limit itself alone: a call is cut at 60 simulated seconds. The batcher's timeout is 10 s (its
// queue's visibility 20 s, as in the chaos test), so that a killed batcher's message comes back
// within the test; a batcher then hands a long generation over to the next after about 5 s.
const stage = `e2elg${Math.random().toString(36).slice(2, 7)}`;
const prefix = `batchline-${stage}`;
const model = "llama-3-8b";
const TOKENS = 16_000;
const request = { model, prompt: "Write the longest story you can.", max_tokens: TOKENS, seed: 17 };
const routeQueues = [`${prefix}-${model}`, `${prefix}-${model}-interactive`];

let stack: Stack;
let jobsTable: DynamoDBDocumentClient;
const invocations: InvocationReport[] = [];
/** The job whose batcher is killed once its progress is stored; unset, nothing is killed. */
let killTarget: string | undefined;
/** A batcher delivered the target is being watched; then killed. */
let killArmed = false;
let killDone = false;
const env = Promise.withResolvers<Readonly<Record<string, string>>>();

const runners = processInvoker({
  functions: {
    [`${prefix}-batcher`]: { module: join(process.cwd(), "functions/batcher/handler.ts"), timeoutSeconds: 10, memoryMb: 1024 },
    [`${prefix}-deadLetter`]: { module: join(process.cwd(), "functions/dead-letter/handler.ts"), timeoutSeconds: 29, memoryMb: 512 },
  },
  env: () => env.promise,
  kill: (question) => killWhenStored(question),
  onInvocation: (report) => invocations.push(report),
});

/**
 * SIGKILLs a batcher delivered the target job once that job's text so far is stored: mid-way, in
 * the call after a stored boundary. A batcher that ends first (nothing stored) disarms the watch
 * for the next one; once killed, no other is.
 */
function killWhenStored({ functionName, event, ended }: KillQuestion): Promise<unknown> | undefined {
  const target = killTarget;
  if (!target || killArmed || killDone || !functionName.endsWith("-batcher")) return undefined;
  if (!event.Records.some((r) => String((r as { body?: unknown }).body).includes(target))) return undefined;
  killArmed = true;
  return new Promise((resolve) => {
    const probe = async (): Promise<void> => {
      if (ended.aborted) {
        killArmed = false;
        return;
      }
      if ((await storedProgress(target).catch(() => undefined)) !== undefined) {
        killDone = true;
        resolve("stored");
        return;
      }
      setTimeout(() => void probe(), 100);
    };
    void probe();
  });
}

async function storedProgress(jobId: string): Promise<{ tokens: number; calls: number } | undefined> {
  const out = await jobsTable.send(new GetCommand({ TableName: `${prefix}-jobs`, Key: { job_id: jobId }, ConsistentRead: true }));
  return out.Item?.progress;
}

async function api(method: string, path: string, body?: object): Promise<{ status: number; json: any }> {
  const response = await fetch(`${stack.endpoints.http}${path}`, { method, headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" }, body: body && JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}

async function finished(jobId: string, timeoutMs: number): Promise<any> {
  return pollUntil(
    async () => {
      const { json } = await api("GET", `/v1/jobs/${jobId}`);
      return json.status === "QUEUED" || json.status === "RUNNING" ? undefined : json;
    },
    `job ${jobId} to end`,
    timeoutMs,
    500,
  );
}

beforeAll(async () => {
  stack = await startStack({
    stage,
    timeScale: 10,
    autoscaling: false,
    invoke: runners.invoke,
    queueAttributeOverrides: Object.fromEntries(routeQueues.map((q) => [q, { VisibilityTimeout: "20" }])),
    offlineReadyTimeoutMs: 300_000,
  });
  env.resolve({ ...stack.functionEnv, BATCHLINE_LOG_LEVEL: "WARN", POWERTOOLS_METRICS_NAMESPACE: "batchline", POWERTOOLS_SERVICE_NAME: "batchline" });
  jobsTable = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(stack.endpoints.dynamodb)));
}, 320_000);

afterAll(async () => {
  runners.killAll();
  await stack?.stop();
});

describe("a generation longer than one invocation", () => {
  let whole: any;

  it("finishes whole, 16 000 tokens through more than one call, its breakdown showing the calls and the extra prefill", { timeout: 180_000 }, async () => {
    // Act
    const submitted = await api("POST", "/v1/jobs", request);
    whole = await finished(submitted.json.job_id, 170_000);

    // Assess
    expect(submitted.status).toBe(202);
    expect(whole).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: TOKENS, finish_reason: "length" } });
    const { calls, extra_prefill_tokens } = whole.breakdown.continuation;
    expect(calls).toBeGreaterThan(1);
    expect(whole.breakdown.generated_tokens).toBe(TOKENS);
    // Each call after the first read the text so far again: more than the first call's tokens, less than all but the last's.
    expect(extra_prefill_tokens).toBeGreaterThan(TOKENS / calls);
    expect(extra_prefill_tokens).toBeLessThan(TOKENS * (calls - 1));
    // No call ran past SageMaker's limit: each was planned to fit it.
    const copies = stack.sagemaker?.stats().components.find((c) => c.component === "llama-3-8b-ic");
    expect(copies?.invocations).toBeGreaterThanOrEqual(calls);
    console.log(
      `long generation: ${TOKENS} tokens (${Buffer.byteLength(whole.result.text)} bytes) in ${calls} calls over ${whole.breakdown.attempts} batcher attempts, ` +
        `${extra_prefill_tokens} tokens prefilled again, gpu ${whole.breakdown.gpu_ms} ms in the last attempt`,
    );
  });

  it("resumes where its stored text ends when its batcher is killed mid-way: the same text, nothing repeated or dropped", { timeout: 180_000 }, async () => {
    // Prepare
    expect(whole?.status, "the uninterrupted job is the reference").toBe("SUCCEEDED");

    // Act
    const submitted = await api("POST", "/v1/jobs", request);
    killTarget = submitted.json.job_id;
    const resumed = await finished(submitted.json.job_id, 170_000);

    // Assess
    expect(killDone).toBe(true);
    expect(invocations.some((r) => r.functionName.endsWith("-batcher") && r.outcome === "killed")).toBe(true);
    expect(resumed).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: TOKENS, finish_reason: "length" } });
    expect(resumed.breakdown.attempts).toBeGreaterThan(1);
    // The calls follow the same plan whoever runs them: the text is the uninterrupted job's, to the character.
    expect(resumed.result.text.length).toBe(whole.result.text.length);
    expect(resumed.result.text).toBe(whole.result.text);
    expect(resumed.breakdown.continuation.calls).toBe(whole.breakdown.continuation.calls);
  });
});

import { loadavg } from "node:os";
import { readingDelta } from "#local/request-meter";
import { serverlessCost } from "./aws-cost.ts";
import { api, submitFile } from "./lanes.ts";
import type { PolicyStack } from "./policy-stack.ts";
import type { PromptBook } from "./prompts.ts";
import type { Mode } from "./scenarios.ts";
import type { RunServerlessCost } from "./run.ts";

/**
 * Issue 18 item 2: what a batch file's line asks of AWS, apart from single jobs. One file on an
 * idle stack of (d), metered from its POST until its batch is completed and the batchers that ran
 * it have ended, divided by its lines. The bench's own progress reads (a GET every few seconds)
 * are in the count, and said apart (`http_api_requests_per_job`).
 */
export const BATCH_LINES_SCENARIO = "batch-lines";

export type BatchLinesPlan = { readonly lines: number; readonly promptTokens: number; readonly maxTokens: number; readonly timeoutMs: number };

export function batchLinesPlan(mode: Mode): BatchLinesPlan {
  // 512+512, as the single jobs: their GPU cost per job is the same, and so comparable.
  return mode === "quick" ? { lines: 400, promptTokens: 512, maxTokens: 512, timeoutMs: 240_000 } : { lines: 2_000, promptTokens: 512, maxTokens: 512, timeoutMs: 600_000 };
}

export type BatchLinesReport = RunServerlessCost & {
  readonly drained_in_s: number;
  /** Lines answered by the end, as the batch's last read said (null: never read). */
  readonly lines_answered?: number | null;
  readonly machine_load: number;
};

const POLL_MS = 3_000;

export async function runBatchLines(stack: PolicyStack, plan: BatchLinesPlan, context: DrainContext): Promise<BatchLinesReport> {
  await stack.settle([], 180_000);
  const lines = Array.from({ length: plan.lines }, (_, i) =>
    JSON.stringify({ custom_id: `line-${i}`, body: { model: stack.target.model, prompt: context.prompts.prompt(plan.promptTokens, i), max_tokens: plan.maxTokens } }),
  );
  context.log(`${BATCH_LINES_SCENARIO}: one file of ${plan.lines} lines (${plan.promptTokens}+${plan.maxTokens}) on ${stack.policy.name}'s idle stack, metered until it is completed`);
  return meteredDrain(stack, { lines: plan.lines, timeoutMs: plan.timeoutMs, submit: async () => ({ id: await submitFile(stack.target, lines.join("\n")) }) }, context);
}

export type DrainContext = { readonly prompts: PromptBook; readonly gpuUsdPerJob: number; readonly log: (line: string) => void };

/** A batch's statuses after which nothing more happens to it (OpenAI's batch object, which every batch has). */
const FINAL_STATUSES = new Set(["completed", "failed", "expired", "cancelled"]);

/**
 * A batch file from its submission until it is completed and the batchers that ran it have ended,
 * metered throughout: `submit` sends it (whatever it asks of AWS is counted) and answers the batch's
 * id, and when the drain's clock starts (default: once it has answered). Its end is known to within
 * a poll (`pollMs`, default 3 s); the polls' GETs are in the count too.
 */
export async function meteredDrain(
  stack: PolicyStack,
  batch: { readonly lines: number; readonly timeoutMs: number; readonly pollMs?: number; readonly submit: () => Promise<{ id: string; drainFromMs?: number }> },
  context: DrainContext,
): Promise<BatchLinesReport> {
  const before = stack.meter.read();
  const submitted = performance.now();
  const { id, drainFromMs } = await batch.submit();
  const started = drainFromMs ?? submitted;
  const deadline = started + batch.timeoutMs;
  let status = "";
  let answered: number | null = null;
  while (!FINAL_STATUSES.has(status) && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, batch.pollMs ?? POLL_MS));
    const answer = await api(stack.target, "GET", `/v1/batches/${id}`);
    if (answer.status !== 200) continue;
    // OpenAI's counts (completed) or a JSON-lines batch's own (succeeded).
    const read = JSON.parse(answer.text) as { status: string; request_counts?: { completed?: number; succeeded?: number } };
    status = read.status;
    answered = read.request_counts?.completed ?? read.request_counts?.succeeded ?? answered;
  }
  const completed = status === "completed";
  const drainedInS = (performance.now() - started) / 1000;
  // Its messages are deleted as its batchers end.
  const waitUntil = performance.now() + 30_000;
  while (stack.invocations.some((i) => i.endedAt === undefined) && performance.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 250));
  const cost = serverlessCost(readingDelta(stack.meter.read(), before), batch.lines, context.gpuUsdPerJob);
  context.log(`  ${completed ? "completed" : `NOT completed (${status || "no answer"})`} in ${drainedInS.toFixed(1)} s: ${cost.requests_per_job.toFixed(2)} AWS requests a line, $${cost.usd_per_job.total.toExponential(2)} (${(100 * cost.share_of_gpu).toFixed(2)}% of the GPU's per job)`);
  return { ...cost, kind: "batch-line", complete: completed, drained_in_s: drainedInS, lines_answered: answered, machine_load: loadavg()[0] ?? 0 };
}

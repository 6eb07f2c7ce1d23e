import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import type { RouteCatalog } from "#shared/core/routes";
import { Api } from "../cli/client.ts";
import { type DrainContext, meteredDrain } from "./batch-lines.ts";
import { engineDrain } from "./phases.ts";
import type { PolicyStack } from "./policy-stack.ts";
import type { PromptBook } from "./prompts.ts";
import type { SmallBatchFileReport } from "./route-summary.ts";
import type { Mode } from "./scenarios.ts";

/**
 * Issue 18 item 3: one batch file of at least 20,000 lines on the 1B route, drained through the
 * pipeline against the engine alone draining the same lines. A file that size (512-token prompts:
 * about 55 MB) is past the HTTP API's payload: it goes in as OpenAI's batch of an uploaded file
 * (`POST /v1/uploads`, the bytes to S3, `POST /v1/batches {input_file_id}`), as `batchline submit`
 * sends it.
 */
export const SMALL_BATCH_FILE = "small-batch-file";

export type SmallBatchFilePlan = { readonly lines: number; readonly promptTokens: number; readonly maxTokens: number; readonly timeoutMs: number };

export function smallBatchFilePlan(mode: Mode): SmallBatchFilePlan {
  // 512+512, as issue 18 measured the 1B route's batches: its copy drains about 5,700 a minute.
  return mode === "quick" ? { lines: 4_000, promptTokens: 512, maxTokens: 512, timeoutMs: 420_000 } : { lines: 20_000, promptTokens: 512, maxTokens: 512, timeoutMs: 1_200_000 };
}

export async function runSmallBatchFile(
  stack: PolicyStack,
  plan: SmallBatchFilePlan,
  context: Omit<DrainContext, "gpuUsdPerJob"> & { readonly catalog: RouteCatalog; readonly outDir: string; readonly gpuUsdPerJobAt: (linesPerMin: number) => number },
): Promise<SmallBatchFileReport> {
  const { component } = stack;
  context.log(`${SMALL_BATCH_FILE}: the engine alone drains ${plan.lines} lines (${plan.promptTokens}+${plan.maxTokens}) on ${stack.route.name}`);
  const engine = await engineDrain(context.catalog, component, { prompts: context.prompts, lines: plan.lines, promptTokens: plan.promptTokens, maxTokens: plan.maxTokens, timeoutMs: plan.timeoutMs });
  context.log(`  ${engine.answered} of ${engine.lines} in ${engine.drained_in_s.toFixed(1)} s: ${engine.lines_per_min.toFixed(0)} lines/min`);
  const file = join(context.outDir, `${SMALL_BATCH_FILE}.jsonl`);
  await writeLines(file, plan, stack.target.model, context.prompts);
  await stack.settle([], 180_000);
  context.log(`${SMALL_BATCH_FILE}: the same lines as one uploaded file through d-adaptive, metered until the batch is completed`);
  const api = new Api({ apiUrl: stack.target.http, wsUrl: stack.target.websocket, apiKey: stack.target.apiKey });
  let uploadS = Number.NaN;
  try {
    const pipeline = await meteredDrain(
      stack,
      {
        lines: plan.lines,
        timeoutMs: plan.timeoutMs,
        // Its end within half a second: 1% of a quick file's drain.
        pollMs: 500,
        submit: async () => {
          const uploading = performance.now();
          const uploaded = await api.uploadFile(file);
          uploadS = (performance.now() - uploading) / 1000;
          const drainFromMs = performance.now();
          const batch = await api.json<{ id: string }>("POST", "/v1/batches", { input_file_id: uploaded.id, endpoint: "/v1/completions", completion_window: "24h" });
          return { id: batch.id, drainFromMs };
        },
      },
      // The GPU's cost per line at the engine's own drain rate: every GPU second at work.
      { ...context, gpuUsdPerJob: context.gpuUsdPerJobAt(engine.lines_per_min) },
    );
    // Not completed: the lines answered by the end, over the time it had (the target still needs every line).
    const done = pipeline.complete ? plan.lines : (pipeline.lines_answered ?? 0);
    const pipelineLinesPerMin = pipeline.drained_in_s > 0 ? (done * 60) / pipeline.drained_in_s : 0;
    return { model: stack.route.name, component: component.name, lines: plan.lines, prompt_tokens: plan.promptTokens, max_tokens: plan.maxTokens, upload_s: uploadS, pipeline, pipeline_lines_per_min: pipelineLinesPerMin, engine };
  } finally {
    await rm(file, { force: true });
  }
}

/** OpenAI's batch lines for /v1/completions, written out as they are made (the file is tens of MB). */
async function writeLines(file: string, plan: SmallBatchFilePlan, model: string, prompts: PromptBook): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < plan.lines; i++) {
    const line = JSON.stringify({ custom_id: `line-${i}`, method: "POST", url: "/v1/completions", body: { model, prompt: prompts.prompt(plan.promptTokens, i), max_tokens: plan.maxTokens } });
    if (!out.write(`${line}\n`)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  out.end();
  await finished(out);
}

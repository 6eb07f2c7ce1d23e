import { InvokeEndpointCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { decodeResponse, encodeRequests } from "#shared/core/engine-codec";
import type { Component } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "#local/aws";
import type { Outcome } from "./outcome.ts";
import type { PromptBook } from "./prompts.ts";
import { openLoop, sleepUntil } from "./schedule.ts";
import type { TraceRequest } from "./trace.ts";

/**
 * The engine with nothing in front of it: InvokeEndpoint with the SDK straight at the SageMaker
 * emulator, one call per request (a rolling-batch container batches them itself), in the body
 * the batcher would send. What the pipeline is measured against.
 */
export type EngineTarget = { readonly sagemakerUrl: string; readonly component: Component };

function client(url: string): SageMakerRuntimeClient {
  return new SageMakerRuntimeClient({
    endpoint: url,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    // Every request of the trace may be in flight at once: no client-side socket queue.
    requestHandler: { httpAgent: { keepAlive: true, maxSockets: 4096 } },
  });
}

async function invokeOne(sdk: SageMakerRuntimeClient, target: EngineTarget, prompt: string, maxTokens: number): Promise<number> {
  const { component } = target;
  const [body] = encodeRequests(component, [{ prompt, max_new_tokens: maxTokens }]);
  const response = await sdk.send(
    new InvokeEndpointCommand({
      EndpointName: component.endpointName,
      InferenceComponentName: component.name,
      ContentType: "application/json",
      Accept: "application/json",
      Body: new TextEncoder().encode(body ?? ""),
    }),
  );
  const counter = tokenCounter("llama2");
  const [output] = decodeResponse(component, new TextDecoder().decode(response.Body), 1, (t) => counter.countCompletion(t));
  return output?.completion_tokens ?? 0;
}

/** Sends a trace straight to the engine, each request at its time; answers until `untilMs`. */
export async function driveEngine(
  target: EngineTarget,
  trace: readonly TraceRequest[],
  options: { prompts: PromptBook; untilMs: number },
): Promise<{ outcomes: Outcome[]; originMs: number; endMs: number }> {
  const sdk = client(target.sagemakerUrl);
  const outcomes: Outcome[] = trace.map((r) => ({ index: r.index, arrivalMs: r.atMs, promptTokens: r.promptTokens, maxTokens: r.maxTokens, status: "unfinished", completionTokens: 0 }));
  const originMs = performance.now() + 100;
  let endMs = 0;
  try {
    const sending = openLoop(trace, originMs, async (request) => {
      const base = outcomes[request.index] as Outcome;
      try {
        const tokens = await invokeOne(sdk, target, options.prompts.prompt(request.promptTokens, request.index), request.maxTokens);
        outcomes[request.index] = { ...base, status: "succeeded", finishedMs: performance.now() - originMs, completionTokens: tokens };
      } catch (error) {
        outcomes[request.index] = { ...base, status: "failed", finishedMs: performance.now() - originMs, error: error instanceof Error ? error.message : String(error) };
      }
    });
    await Promise.race([sending, sleepUntil(originMs + options.untilMs)]);
    endMs = performance.now() - originMs;
  } finally {
    sdk.destroy();
  }
  return { outcomes: outcomes.map((o) => ({ ...o })), originMs, endMs };
}

/**
 * The engine's ceiling: a closed loop of `concurrency` clients (its admission limit), each
 * sending its next request as soon as it has an answer. Clients start spread over `staggerMs`
 * so that they do not all finish, and come back, in step. With `total`, no more than that many
 * requests are sent (a batch of that size drained). Returns every answer's time.
 */
export async function closedLoop(
  target: EngineTarget,
  options: { prompts: PromptBook; concurrency: number; promptTokens: number; maxTokens: number; staggerMs: number; durationMs: number; total?: number },
): Promise<Outcome[]> {
  const sdk = client(target.sagemakerUrl);
  const outcomes: Outcome[] = [];
  const originMs = performance.now() + 100;
  const endMs = originMs + options.durationMs;
  let sent = 0;
  const clientLoop = async (i: number) => {
    await sleepUntil(originMs + (i * options.staggerMs) / options.concurrency);
    while (performance.now() < endMs && sent < (options.total ?? Number.POSITIVE_INFINITY)) {
      const arrivalMs = performance.now() - originMs;
      const index = sent++;
      try {
        const tokens = await invokeOne(sdk, target, options.prompts.prompt(options.promptTokens, index), options.maxTokens);
        outcomes.push({ index, arrivalMs, promptTokens: options.promptTokens, maxTokens: options.maxTokens, status: "succeeded", finishedMs: performance.now() - originMs, completionTokens: tokens });
      } catch (error) {
        outcomes.push({ index, arrivalMs, promptTokens: options.promptTokens, maxTokens: options.maxTokens, status: "failed", finishedMs: performance.now() - originMs, completionTokens: 0, error: String(error) });
        await sleepUntil(performance.now() + 100);
      }
    }
  };
  try {
    // Answers still on their way at the end are not waited for: they fall outside the window.
    const clients = Promise.all(Array.from({ length: options.concurrency }, (_, i) => clientLoop(i)));
    await Promise.race([clients, sleepUntil(endMs)]);
  } finally {
    sdk.destroy();
  }
  return outcomes.filter((o) => (o.finishedMs ?? Number.POSITIVE_INFINITY) <= options.durationMs);
}

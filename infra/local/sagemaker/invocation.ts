import type { IncomingMessage, ServerResponse } from "node:http";
import type { Component, RouteCatalog, TokenizerName } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { renderChat, renderChatContinuing } from "#shared/core/prompt";
import type { EngineClock } from "./clock.ts";
import type { ComponentEngine, Outcome } from "./component.ts";
import * as errors from "./errors.ts";
import type { Reply } from "./errors.ts";
import { exceptionMessage, payloadPart } from "./event-stream.ts";
import type { FaultDecision, FaultInjector } from "./faults.ts";
import type { Fleet } from "./fleet.ts";
import { generate, type EarlyStop } from "./generate.ts";
import { parseRequest } from "./request.ts";
import { contentTypeOf, streamChunk, streamEnd, wholeBody, type Answer } from "./responses.ts";

/**
 * One InvokeEndpoint or InvokeEndpointWithResponseStream call, checked in the order SageMaker
 * checks it: the endpoint and inference component named, injected faults, the payload limit,
 * copies ready to serve, the container's own checks of the body, its queue, and the invocation
 * timeout. Answers a Reply, or writes the stream itself.
 */
export type InvocationContext = {
  readonly catalog: RouteCatalog;
  readonly fleet: Fleet;
  readonly clock: EngineClock;
  readonly timeScale: number;
  readonly faults: FaultInjector | undefined;
  readonly earlyStop: EarlyStop | undefined;
};

/** What the handler did: a reply for the server to send, or the response already handled. */
export type Handled = Reply | "streamed" | "dropped";

type Prepared = { readonly engine: ComponentEngine; readonly answer: Answer; readonly fault: Extract<FaultDecision, { kind: "none" }> };

export async function invoke(ctx: InvocationContext, req: IncomingMessage, res: ServerResponse, endpointName: string, streaming: boolean, requestId: string): Promise<Handled> {
  const receivedAt = performance.now();
  // The request reaches the container now: the emulator's own parsing and token counting (tens of
  // ms for a long prompt in JavaScript, ~1 ms in a real container) is not the simulated GPU's time.
  const receivedMs = ctx.clock.now();
  const prepared = await prepare(ctx, req, endpointName, streaming, requestId);
  if (typeof prepared === "string" || "status" in prepared) return prepared;
  const { engine, answer, fault } = prepared;
  const sequences = answer.generations.map((g, i) => ({ promptTokens: answer.request.promptTokens[i] ?? 0, newTokens: g.tokens.length, maxNewTokens: answer.request.maxNewTokens }));
  const stream = streaming ? openStream(res, answer, requestId, fault.breakStream) : undefined;
  const routed = engine.invoke({ sequences, delayMs: fault.delayMs, onProgress: stream?.progress, receivedMs });
  const { component } = engine;
  if (routed.kind === "queue-full") {
    engine.countError("invocationModelErrors");
    return errors.containerQueueFull(component.name, component.format, component.max_queue_length);
  }
  // The caller closed its connection before the answer. SageMaker is taken to close its own to
  // the container then (AWS does not say), and the container learns of it from that connection.
  const abandoned = () => {
    if (!res.writableFinished) routed.abandon();
  };
  if (res.destroyed) abandoned();
  else res.once("close", abandoned);
  const outcome = await routed.outcome;
  if (outcome.kind === "aborted") return "dropped";
  if (outcome.kind === "done") {
    // OverheadLatency: the call's time in SageMaker (here: HTTP and scheduling lag) around the container's.
    const wallMs = (performance.now() - receivedAt) * ctx.timeScale;
    engine.recordOverhead(outcome.copy, Math.max(0, wallMs - (outcome.finishedMs - outcome.arrivedMs)));
  } else if (!stream?.broken()) {
    engine.countError("invocationModelErrors");
  }
  if (stream) return stream.finish(outcome, component);
  if (outcome.kind === "timeout") return errors.modelTimeout(component.name, component.limits.max_invocation_seconds);
  return {
    status: 200,
    headers: { "content-type": contentTypeOf(answer.request, false), "x-Amzn-Invoked-Production-Variant": "AllTraffic" },
    body: wholeBody(answer),
  };
}

/** Everything up to the GPU: an error reply, a dropped connection, or the answer to compute. */
async function prepare(ctx: InvocationContext, req: IncomingMessage, endpointName: string, streaming: boolean, requestId: string): Promise<Handled | Prepared> {
  if (!ctx.catalog.endpoints.has(endpointName)) return errors.endpointNotFound(endpointName);
  const componentName = firstHeader(req, "x-amzn-sagemaker-inference-component");
  if (!componentName) return errors.componentHeaderMissing(endpointName);
  const engine = ctx.fleet.engine(componentName);
  if (!engine || engine.component.endpointName !== endpointName) return errors.componentNotFound(componentName, endpointName);
  const { component } = engine;

  const fault = ctx.faults?.decide(componentName, ctx.clock.now()) ?? { kind: "none", delayMs: 0, breakStream: false };
  if (fault.kind !== "none") return refuseByFault(fault, engine, req);

  const body = await readBody(req, component.limits.payload_bytes);
  if (!body) {
    engine.countError("invocation4xxErrors");
    return errors.payloadTooLarge(requestId, component.limits.payload_bytes);
  }
  // No copy in service: refused, and counted for the alarm that wakes the component. Nothing
  // starts a copy here: the autoscaler does, from that alarm, a period later (as in AWS).
  if (!engine.readiness().ready) {
    engine.countError("noCapacityInvocationFailures");
    return errors.noCapacity();
  }
  const family = tokenizerOf(ctx.catalog, component);
  const parsed = parseRequest(body, component, { counter: tokenCounter(family), servedModels: servedModels(ctx.catalog, component), renderChat: (messages, continuing) => (continuing ? renderChatContinuing(messages, family) : renderChat(messages, family)) });
  if (!parsed.ok) return refuseAsModel(engine, parsed.message, parsed.status);
  if (streaming && component.engine === "lmi-dynamic") return refuseAsModel(engine, "streaming needs a rolling-batch engine; this model runs dynamic batches");
  const { request } = parsed;
  const poisoned = ctx.faults?.rejectedPrompt(componentName, request.prompts);
  if (poisoned !== undefined) return refuseAsModel(engine, `input ${poisoned} is malformed: it holds the marker the fault switch reject_prompts_containing names`);
  const generations = request.prompts.map((prompt) => generate(prompt, { maxNewTokens: request.maxNewTokens, seed: request.seed, earlyStop: ctx.earlyStop }));
  const answer: Answer = { request, generations, id: `cmpl-${requestId.replaceAll("-", "")}`, created: Math.floor(Date.now() / 1000) };
  return { engine, answer, fault };
}

function refuseByFault(fault: Exclude<FaultDecision, { kind: "none" }>, engine: ComponentEngine, req: IncomingMessage): Handled {
  switch (fault.kind) {
    case "outage":
      if (fault.reset) {
        req.socket.destroy();
        return "dropped";
      }
      engine.countError("invocation5xxErrors");
      return errors.serviceFaults.ServiceUnavailable();
    case "throttle":
      engine.countError("throttles");
      return errors.throttled();
    case "error":
      if (fault.errorType === "ModelError") {
        engine.countError("invocationModelErrors");
        return errors.modelServerError(engine.component.name, engine.component.format);
      }
      engine.countError("invocation5xxErrors");
      return errors.serviceFaults[fault.errorType]();
  }
}

/** The container refused the body: the model's own 4xx, wrapped in a ModelError. */
function refuseAsModel(engine: ComponentEngine, message: string, status?: 400 | 404 | 422): Reply {
  engine.countError("invocationModelErrors");
  return errors.modelClientError(engine.component.name, engine.component.format, message, status);
}

/**
 * A response stream: the 200 and its headers go out with the first bytes, as SageMaker starts
 * its answer when the container does, so a client's time to first byte is its time to first token.
 */
function openStream(res: ServerResponse, answer: Answer, requestId: string, breakHalfway: boolean) {
  const sent = answer.request.prompts.map(() => 0);
  const breakAfter = breakHalfway ? Math.max(1, Math.floor((answer.generations[0]?.tokens.length ?? 0) / 2)) : Number.POSITIVE_INFINITY;
  let broken = false;
  const closed = () => res.destroyed || res.writableEnded;
  const open = () => {
    if (res.headersSent) return;
    res.writeHead(200, {
      "content-type": "application/vnd.amazon.eventstream",
      "x-amzn-sagemaker-content-type": contentTypeOf(answer.request, true),
      "x-Amzn-Invoked-Production-Variant": "AllTraffic",
      "x-amzn-RequestId": requestId,
    });
  };
  const write = (bytes: string) => {
    if (bytes.length === 0 || closed()) return;
    open();
    res.write(payloadPart(bytes));
  };
  const fail = (failure: errors.StreamFailure) => {
    if (closed()) return;
    open();
    res.end(exceptionMessage(failure));
  };
  return {
    broken: () => broken,
    progress(generated: readonly number[]): void {
      if (broken) return;
      write(streamChunk(answer, sent, generated.map((n, i) => (i === 0 ? Math.min(n, breakAfter) : n))));
      if ((generated[0] ?? 0) >= breakAfter) {
        broken = true;
        fail(errors.streamBroken());
      }
    },
    /** Ends the stream, or answers an error reply when nothing has been sent yet. */
    finish(outcome: Outcome, component: Component): Handled {
      if (broken) return "streamed";
      if (outcome.kind === "timeout") {
        if (!res.headersSent) return errors.modelTimeout(component.name, component.limits.max_invocation_seconds);
        fail(errors.streamTimedOut());
        return "streamed";
      }
      write(streamEnd(answer));
      if (!closed()) res.end();
      return "streamed";
    },
  };
}

/** The tokenizer of the route a component serves: its model's family (its chat template too); generate.ts's words are one token in each. */
function tokenizerOf(catalog: RouteCatalog, component: Component): TokenizerName {
  for (const route of catalog.routes.values()) {
    if (route.components.some((c) => c.name === component.name)) return route.tokenizer;
  }
  return "llama2";
}

/** The names a vLLM container answers to: its component's, and each route's that it serves. */
function servedModels(catalog: RouteCatalog, component: Component): string[] {
  const routes = [...catalog.routes.values()].filter((r) => r.components.some((c) => c.name === component.name)).map((r) => r.name);
  return [component.name, ...routes];
}

function firstHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The body, or undefined once it passes `limitBytes` (read to the end so the socket stays usable). */
async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limitBytes) chunks.push(chunk);
  }
  return size > limitBytes ? undefined : Buffer.concat(chunks);
}

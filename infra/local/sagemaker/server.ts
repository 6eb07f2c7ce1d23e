import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Component, EngineMode, RouteCatalog, TokenizerName } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { scaledClock } from "./clock.ts";
import { createComponentEngine, type ComponentEngine, type CopyStats } from "./engine.ts";
import * as errors from "./errors.ts";
import type { Reply } from "./errors.ts";
import { generateText } from "./generate.ts";
import { parseLmiRequest, type LmiRequest } from "./request.ts";

/**
 * The SageMaker runtime emulator: InvokeEndpoint on inference components, wire-faithful enough
 * that @aws-sdk/client-sagemaker-runtime talks to it unchanged. The HTTP layer only routes and
 * shapes replies; request checks live in request.ts, timing in engine.ts.
 */

export type ComponentStats = {
  readonly component: string;
  readonly endpoint: string;
  readonly engine: EngineMode;
  readonly copies: readonly CopyStats[];
};

export type EmulatorStats = {
  readonly timeScale: number;
  /** The emulator's simulated time since start, ms. */
  readonly nowMs: number;
  readonly components: readonly ComponentStats[];
};

export type SageMakerEmulator = {
  readonly url: string;
  readonly port: number;
  stats(): EmulatorStats;
  close(): Promise<void>;
};

export type SageMakerEmulatorOptions = {
  readonly catalog: RouteCatalog;
  /** Default 8080, the embedded stack's port; 0 picks a free one. */
  readonly port?: number;
  readonly host?: string;
  /** Simulated ms per wall ms: 1 is real time, 100 runs 100 times faster. */
  readonly timeScale?: number;
};

const invocationsPath = /^\/endpoints\/([^/]+)\/invocations$/;

export async function startSageMakerEmulator(options: SageMakerEmulatorOptions): Promise<SageMakerEmulator> {
  const { catalog } = options;
  const timeScale = options.timeScale ?? 1;
  const clock = scaledClock(timeScale);
  let engines = buildEngines();

  function buildEngines(): Map<string, ComponentEngine> {
    // A component with no copies gets no engine: it answers ModelNotReadyException.
    return new Map(
      [...catalog.components.values()].filter((c) => c.copies > 0).map((c) => [c.name, createComponentEngine(c, clock)]),
    );
  }

  function stats(): EmulatorStats {
    return {
      timeScale,
      nowMs: clock.now(),
      components: [...catalog.components.values()].map((c) => ({
        component: c.name,
        endpoint: c.endpointName,
        engine: c.engine,
        copies: engines.get(c.name)?.stats() ?? [],
      })),
    };
  }

  async function invoke(req: IncomingMessage, endpointName: string, requestId: string): Promise<Reply> {
    if (!catalog.endpoints.has(endpointName)) return errors.endpointNotFound(endpointName);
    const componentName = firstHeader(req, "x-amzn-sagemaker-inference-component");
    if (!componentName) {
      return errors.validationError(`Inference Component Name header is required for endpoint ${endpointName}, which hosts inference components.`);
    }
    const component = catalog.components.get(componentName);
    if (!component || component.endpointName !== endpointName) {
      return errors.validationError(`Inference component ${componentName} not found on endpoint ${endpointName}.`);
    }
    const engine = engines.get(componentName);
    if (!engine) return errors.noCopies(componentName);
    const body = await readBody(req, component.limits.payload_bytes);
    if (!body) return errors.payloadTooLarge(requestId, component.limits.payload_bytes);
    const parsed = parseLmiRequest(body, component, tokenCounter(tokenizerOf(catalog, component)));
    if (!parsed.ok) return errors.modelClientError(componentName, parsed.message);
    const outcome = await engine.submit(parsed.request.sequences);
    if (outcome.kind === "timeout") return errors.modelTimeout(componentName, component.limits.max_invocation_seconds);
    return {
      status: 200,
      headers: { "content-type": "application/json", "x-Amzn-Invoked-Production-Variant": "AllTraffic" },
      body: JSON.stringify(completions(parsed.request)),
    };
  }

  async function route(req: IncomingMessage, requestId: string): Promise<Reply> {
    const path = new URL(req.url ?? "/", "http://emulator").pathname;
    const invocation = invocationsPath.exec(path);
    if (req.method === "POST" && invocation?.[1]) return invoke(req, decodeURIComponent(invocation[1]), requestId);
    if (req.method === "GET" && path === "/_emulator/stats") return json(200, stats());
    if (req.method === "POST" && path === "/_emulator/reset") {
      // Requests still in flight finish on the engines they started on.
      engines = buildEngines();
      return { status: 204, headers: {}, body: "" };
    }
    return errors.notFound(path);
  }

  const server = createServer((req, res) => {
    const requestId = randomUUID();
    route(req, requestId)
      .catch((cause: unknown) => errors.internalFailure(cause instanceof Error ? cause.message : String(cause)))
      .then((reply) => send(res, requestId, reply));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8080, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    stats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        clock.dispose();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** LMI's answer: one object for a string input, a list in input order for a list. */
function completions(request: LmiRequest) {
  const results = request.prompts.map((prompt, i) => ({
    generated_text: generateText(prompt, { newTokens: request.maxNewTokens, seed: request.seed }),
    details: {
      finish_reason: "length",
      generated_tokens: request.maxNewTokens,
      prompt_tokens: request.sequences[i]?.promptTokens ?? 0,
    },
  }));
  return request.single ? results[0] : results;
}

/** The tokenizer of the route a component serves; generate.ts's words are checked for Llama-2. */
function tokenizerOf(catalog: RouteCatalog, component: Component): TokenizerName {
  for (const route of catalog.routes.values()) {
    if (route.components.some((c) => c.name === component.name)) return route.tokenizer;
  }
  return "llama2";
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

function json(status: number, value: unknown): Reply {
  return { status, headers: { "content-type": "application/json" }, body: JSON.stringify(value) };
}

function send(res: ServerResponse, requestId: string, reply: Reply): void {
  if (res.destroyed) return;
  res.writeHead(reply.status, { ...reply.headers, "content-length": Buffer.byteLength(reply.body), "x-amzn-RequestId": requestId });
  res.end(reply.body);
}

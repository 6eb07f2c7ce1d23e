import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import type { RouteCatalog } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { scaledClock } from "./clock.ts";
import { controlPlane, isControlPlaneCall } from "./control-plane.ts";
import * as errors from "./errors.ts";
import type { Reply } from "./errors.ts";
import { faultInjector, faultSettingsSchema, type FaultInjector, type FaultSettingsInput } from "./faults.ts";
import { createFleet, type Fleet } from "./fleet.ts";
import type { EarlyStop } from "./generate.ts";
import { invoke, type Handled } from "./invocation.ts";
import { emulatorScaling, type EmulatorScaling } from "./scaling-api.ts";

/**
 * The SageMaker runtime emulator: InvokeEndpoint and InvokeEndpointWithResponseStream on the
 * inference components of infra/routes.yml, wire-faithful enough that the AWS SDK and the AWS CLI
 * talk to it unchanged, DescribeInferenceComponent of the control plane, plus control routes under
 * /_emulator for tests, tools and the dashboard. This file only routes; invocation.ts runs a call,
 * fleet.ts and component.ts the GPUs, control-plane.ts the control plane. Nothing scales here: the
 * local autoscaler (infra/local/autoscaler.ts) does, through `scaling`.
 */

export type SageMakerEmulatorOptions = {
  readonly catalog: RouteCatalog;
  /** Default 8080, the embedded stack's port; 0 picks a free one. */
  readonly port?: number;
  readonly host?: string;
  /** Simulated ms per wall ms: 1 is real time, 100 runs 100 times faster. */
  readonly timeScale?: number;
  /** Faults in force from the start, as POST /_emulator/faults takes them. */
  readonly faults?: FaultSettingsInput;
  /** Output lengths that vary like real traffic (finish_reason "stop"); by default every answer runs to its max new tokens. */
  readonly earlyStop?: EarlyStop;
  /**
   * How many times faster than AWS the scaling machinery runs: a new copy's warm-up and the
   * CloudWatch metric periods are divided by it, and the autoscaler divides its alarms and
   * cooldowns by it too. Default 1.
   */
  readonly scalingTimeCompression?: number;
  /** Width of the stats' time buckets, simulated seconds; default 1. */
  readonly statsBucketSeconds?: number;
  /**
   * The functions' BATCHLINE_RESOURCE_PREFIX: endpoints and inference components also answer to
   * their deployed names, `<prefix>-<name>` (shared/config.ts, sageMakerNames), as in AWS.
   */
  readonly resourcePrefix?: string;
};

export type EmulatorStats = ReturnType<Fleet["stats"]> & {
  readonly timeScale: number;
  /** The emulator's simulated time since start, ms. */
  readonly nowMs: number;
  readonly faults: unknown;
  readonly earlyStop: EarlyStop | null;
};
export type ComponentStats = EmulatorStats["components"][number];
export type CopyStats = ComponentStats["copies"][number];

export type SageMakerEmulator = {
  readonly url: string;
  readonly port: number;
  stats(): EmulatorStats;
  /** For the local autoscaler in the same process. */
  readonly scaling: EmulatorScaling;
  close(): Promise<void>;
};

const componentHeader = "x-amzn-sagemaker-inference-component";
const invocationsPath = /^\/endpoints\/([^/]+)\/(invocations|invocations-response-stream)$/;
const copiesPath = /^\/_emulator\/components\/([^/]+)\/copies$/;

const earlyStopSchema = z.strictObject({ median_tokens: z.number().positive(), sigma: z.number().nonnegative() });
const copiesSchema = z.strictObject({ copies: z.number().int().nonnegative() });

export async function startSageMakerEmulator(options: SageMakerEmulatorOptions): Promise<SageMakerEmulator> {
  const { catalog } = options;
  const timeScale = options.timeScale ?? 1;
  const clock = scaledClock(timeScale);
  const bucketMs = (options.statsBucketSeconds ?? 1) * 1000;
  const startFaults = () => (options.faults ? faultInjector(faultSettingsSchema.parse(options.faults), 0) : undefined);
  const fleetOptions = { clock, bucketMs, scalingTimeCompression: options.scalingTimeCompression ?? 1 };
  const createdAtEpochSeconds = Date.now() / 1000;
  let fleet = createFleet(catalog, fleetOptions);
  let faults: FaultInjector | undefined = startFaults();
  let earlyStop = options.earlyStop;

  function stats(): EmulatorStats {
    const outage = faults?.outage;
    return {
      timeScale,
      nowMs: clock.now(),
      faults: faults ? { ...faults.settings, ...(outage && { outage_window_ms: [outage.startMs, outage.endMs] }) } : null,
      earlyStop: earlyStop ?? null,
      ...fleet.stats(),
    };
  }

  /** The control routes: stats, reset, faults, copies, early stop. */
  async function control(req: IncomingMessage, path: string): Promise<Reply> {
    const route = `${req.method} ${path}`;
    if (route === "GET /_emulator/stats") return json(200, stats());
    if (route === "POST /_emulator/reset") {
      // Requests still in flight finish on the engines they started on.
      fleet = createFleet(catalog, fleetOptions);
      faults = startFaults();
      earlyStop = options.earlyStop;
      return json(200, stats());
    }
    if (route === "GET /_emulator/faults") return json(200, stats().faults);
    if (route === "DELETE /_emulator/faults") {
      faults = undefined;
      return json(200, null);
    }
    if (route === "POST /_emulator/faults") {
      return withBody(req, faultSettingsSchema, (settings) => {
        faults = faultInjector(settings, clock.now());
        return json(200, stats().faults);
      });
    }
    if (route === "POST /_emulator/early-stop") {
      return withBody(req, earlyStopSchema, (body) => {
        earlyStop = { medianTokens: body.median_tokens, sigma: body.sigma };
        return json(200, earlyStop);
      });
    }
    if (route === "DELETE /_emulator/early-stop") {
      earlyStop = undefined;
      return json(200, null);
    }
    const copies = copiesPath.exec(path);
    if (req.method === "POST" && copies?.[1]) {
      const name = decodeURIComponent(copies[1]);
      return withBody(req, copiesSchema, (body) => {
        if (!fleet.engine(name)) return json(404, { message: `unknown inference component ${name}` });
        const scaled = fleet.scale(name, body.copies, { cause: "manual", detail: `POST ${path}` });
        return scaled.ok ? json(200, stats().components.find((c) => c.component === name)) : json(409, { message: scaled.message });
      });
    }
    return errors.notFound(path);
  }

  /** The routes.yml name behind a deployed one; any other name as it is. */
  const deployedPrefix = options.resourcePrefix === undefined ? undefined : `${options.resourcePrefix}-`;
  const routesName = (name: string) => (deployedPrefix && name.startsWith(deployedPrefix) ? name.slice(deployedPrefix.length) : name);

  async function route(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<Handled> {
    const path = new URL(req.url ?? "/", "http://emulator").pathname;
    const invocation = invocationsPath.exec(path);
    if (req.method === "POST" && invocation?.[1]) {
      const context = { catalog, fleet, clock, timeScale, faults, earlyStop };
      const component = req.headers[componentHeader];
      if (typeof component === "string") req.headers[componentHeader] = routesName(component);
      return invoke(context, req, res, routesName(decodeURIComponent(invocation[1])), invocation[2] === "invocations-response-stream", requestId);
    }
    if (isControlPlaneCall(req, path)) return controlPlane(req, fleet, createdAtEpochSeconds, routesName);
    return control(req, path);
  }

  const server = createServer((req, res) => {
    const requestId = randomUUID();
    route(req, res, requestId)
      .catch((cause: unknown) => errors.internalFailure(cause instanceof Error ? cause.message : String(cause)))
      .then((handled) => {
        if (typeof handled === "object") send(res, requestId, handled);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8080, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  // A container loads its tokenizer before it serves. Loading Llama-3's on a first call would
  // stall the event loop for about a second while requests run, which a high time scale turns
  // into minutes; loaded right after start, it delays only the first calls' arrival, and not
  // whoever started the emulator (the embedded stack starts osls meanwhile).
  setImmediate(() => {
    for (const route of catalog.routes.values()) tokenCounter(route.tokenizer).countPrompt("");
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    stats,
    scaling: emulatorScaling(catalog, clock, () => fleet),
    close: () =>
      new Promise<void>((resolve, reject) => {
        clock.dispose();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Parses a control request's JSON body with `schema`; a bad body is a 400 naming the problem. */
async function withBody<T>(req: IncomingMessage, schema: z.ZodType<T>, use: (body: T) => Reply): Promise<Reply> {
  let text = "";
  for await (const chunk of req as AsyncIterable<Buffer>) text += chunk.toString("utf8");
  let raw: unknown;
  try {
    raw = JSON.parse(text || "{}");
  } catch {
    return json(400, { message: "body is not JSON" });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return json(400, { message: parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ") });
  return use(parsed.data);
}

function json(status: number, value: unknown): Reply {
  return { status, headers: { "content-type": "application/json" }, body: JSON.stringify(value) };
}

function send(res: ServerResponse, requestId: string, reply: Reply): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(reply.status, { ...reply.headers, "content-length": Buffer.byteLength(reply.body), "x-amzn-RequestId": requestId });
  res.end(reply.body);
}

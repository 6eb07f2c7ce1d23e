import { once } from "node:events";
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { seededRandom } from "./sagemaker/random.ts";

/**
 * A fault proxy in front of dynalite, for the chaos suite: it forwards DynamoDB's JSON protocol
 * as it is and answers a share of requests with an error DynamoDB itself sends, either instead of
 * forwarding ("before": nothing was written) or after forwarding ("after": the write happened and
 * only its answer is lost, which is what makes the SDK's retries of non-idempotent calls
 * interesting). Every exchange can be observed (`onExchange`), which is how the chaos suite counts
 * the writes that really happened.
 */

/** `internal`: 500 InternalServerError; `throttle`: 400 ProvisionedThroughputExceededException. */
export type DynamoDbFaultKind = "internal" | "throttle";

export type DynamoDbFaultSettings = {
  /** Share of requests answered with an error without reaching DynamoDB. */
  readonly beforeFraction?: number;
  /** Share of requests forwarded (their effect happens), then answered with an error instead of DynamoDB's answer. */
  readonly afterFraction?: number;
  /** Share of injected errors that are throttling; the rest are 500s. Default 0.5. */
  readonly throttleShare?: number;
  /** Only these operations (the X-Amz-Target action, e.g. "UpdateItem"); all when absent. */
  readonly operations?: readonly string[];
  /** Only requests naming one of these tables; all when absent. */
  readonly tables?: readonly string[];
  /** The same seed and the same requests in the same order meet the same faults. Default 0. */
  readonly seed?: number;
};

export type DynamoDbExchange = {
  /** The X-Amz-Target action, e.g. "UpdateItem"; "" when there is none. */
  readonly operation: string;
  /** TableName of the request (the first table of a BatchWriteItem or BatchGetItem). */
  readonly table: string | undefined;
  /** The request body as JSON (undefined when it is not JSON). */
  readonly request: unknown;
  readonly fault: "none" | "before" | "after";
  readonly faultKind: DynamoDbFaultKind | undefined;
  /** DynamoDB's status; undefined when the request never reached it. */
  readonly upstreamStatus: number | undefined;
  /** DynamoDB's answer (also when the client got an injected error instead). */
  readonly upstreamBody: string | undefined;
  /**
   * Why DynamoDB gave no answer (the network error's code, e.g. ECONNREFUSED, ECONNRESET). Any
   * other than ECONNREFUSED may have been written: a server killed mid-request.
   */
  readonly upstreamError?: string | undefined;
  /** What the client got. */
  readonly status: number;
  /** When DynamoDB answered (or the proxy did, for a fault before), ms since the epoch. */
  readonly at: number;
};

export type DynamoDbFaultProxyStats = {
  readonly requests: number;
  readonly forwarded: number;
  readonly injected: { readonly before: Readonly<Record<DynamoDbFaultKind, number>>; readonly after: Readonly<Record<DynamoDbFaultKind, number>> };
  /** Requests that could not reach DynamoDB at all (answered 502). */
  readonly unreachable: number;
};

export type DynamoDbFaultProxy = {
  readonly url: string;
  readonly port: number;
  /** Replaces the faults in force (undefined: none); the random sequence starts again from the seed. */
  setFaults(settings: DynamoDbFaultSettings | undefined): void;
  stats(): DynamoDbFaultProxyStats;
  close(): Promise<void>;
};

export type DynamoDbFaultProxyOptions = {
  /** Where DynamoDB listens, e.g. `http://127.0.0.1:8000`; it need not listen yet. */
  readonly target: string;
  /** The server behind it, as its 502 names it (the chaos run passes SQS through one too). */
  readonly serverName?: string;
  readonly host?: string;
  /** 0 or absent: a free port. */
  readonly port?: number;
  readonly faults?: DynamoDbFaultSettings;
  readonly onExchange?: (exchange: DynamoDbExchange) => void;
};

const JSON_CONTENT_TYPE = "application/x-amz-json-1.0";

/** The bodies DynamoDB sends for these errors (JSON 1.0 protocol: `__type` names the exception). */
export const dynamoDbFaultReplies: Readonly<Record<DynamoDbFaultKind, { readonly status: number; readonly body: string }>> = {
  internal: {
    status: 500,
    body: JSON.stringify({ __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "Internal server error (injected by the fault proxy)" }),
  },
  throttle: {
    status: 400,
    body: JSON.stringify({
      __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
      message: "The level of configured provisioned throughput for the table was exceeded. (injected by the fault proxy)",
    }),
  },
};

export async function startDynamoDbFaultProxy(options: DynamoDbFaultProxyOptions): Promise<DynamoDbFaultProxy> {
  const target = new URL(options.target);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let faults = compile(options.faults);
  const counts = {
    requests: 0,
    forwarded: 0,
    unreachable: 0,
    injected: { before: { internal: 0, throttle: 0 }, after: { internal: 0, throttle: 0 } },
  };

  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      upstream.on("error", reject);
      upstream.end(body);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    counts.requests++;
    const operation = String(req.headers["x-amz-target"] ?? "").split(".").pop() ?? "";
    const request = parseJson(body.toString("utf8"));
    const table = tableOf(request);
    const decision = faults.decide(operation, table);
    const report = (fields: Pick<DynamoDbExchange, "upstreamStatus" | "upstreamBody" | "upstreamError" | "status">) =>
      options.onExchange?.({ operation, table, request, fault: decision.fault, faultKind: decision.kind, at: Date.now(), ...fields });

    if (decision.fault === "before") {
      counts.injected.before[decision.kind]++;
      reply(res, dynamoDbFaultReplies[decision.kind]);
      report({ upstreamStatus: undefined, upstreamBody: undefined, status: dynamoDbFaultReplies[decision.kind].status });
      return;
    }
    let upstream;
    try {
      upstream = await forward(req, body);
    } catch (error) {
      counts.unreachable++;
      reply(res, { status: 502, body: JSON.stringify({ message: `fault proxy: ${options.serverName ?? "DynamoDB"} unreachable: ${String(error)}` }) });
      report({ upstreamStatus: undefined, upstreamBody: undefined, upstreamError: (error as NodeJS.ErrnoException).code ?? String(error), status: 502 });
      return;
    }
    counts.forwarded++;
    const upstreamBody = upstream.body.toString("utf8");
    if (decision.fault === "after") {
      counts.injected.after[decision.kind]++;
      reply(res, dynamoDbFaultReplies[decision.kind]);
      report({ upstreamStatus: upstream.status, upstreamBody, status: dynamoDbFaultReplies[decision.kind].status });
      return;
    }
    const headers = { ...upstream.headers };
    delete headers.connection;
    delete headers["keep-alive"];
    delete headers["transfer-encoding"];
    res.writeHead(upstream.status, headers);
    res.end(upstream.body);
    report({ upstreamStatus: upstream.status, upstreamBody, status: upstream.status });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) reply(res, { status: 500, body: JSON.stringify({ message: `fault proxy: ${String(error)}` }) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(options.port ?? 0, options.host ?? "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? "127.0.0.1"}:${port}`,
    port,
    setFaults(settings) {
      faults = compile(settings);
    },
    stats: () => structuredClone(counts),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

type Decision = { readonly fault: "none"; readonly kind: undefined } | { readonly fault: "before" | "after"; readonly kind: DynamoDbFaultKind };

function compile(settings: DynamoDbFaultSettings | undefined): { decide(operation: string, table: string | undefined): Decision } {
  const none: Decision = { fault: "none", kind: undefined };
  if (!settings) return { decide: () => none };
  const before = checkFraction(settings.beforeFraction ?? 0, "beforeFraction");
  const after = checkFraction(settings.afterFraction ?? 0, "afterFraction");
  const throttleShare = checkFraction(settings.throttleShare ?? 0.5, "throttleShare");
  if (before + after > 1) throw new Error("fault proxy: beforeFraction + afterFraction must be at most 1");
  const operations = settings.operations && new Set(settings.operations);
  const tables = settings.tables && new Set(settings.tables);
  const random = seededRandom(`dynamodb-faults\u0000${settings.seed ?? 0}`);
  return {
    decide(operation, table) {
      if (operations && !operations.has(operation)) return none;
      if (tables && (table === undefined || !tables.has(table))) return none;
      const draw = random();
      const kind: DynamoDbFaultKind = random() < throttleShare ? "throttle" : "internal";
      if (draw < before) return { fault: "before", kind };
      if (draw < before + after) return { fault: "after", kind };
      return none;
    },
  };
}

function checkFraction(value: number, name: string): number {
  if (!(value >= 0 && value <= 1)) throw new Error(`fault proxy: ${name} must be between 0 and 1, got ${value}`);
  return value;
}

function reply(res: ServerResponse, answer: { readonly status: number; readonly body: string }): void {
  res.writeHead(answer.status, { "content-type": JSON_CONTENT_TYPE, "content-length": Buffer.byteLength(answer.body), "x-amzn-requestid": requestId() });
  res.end(answer.body);
}

let sequence = 0;
function requestId(): string {
  return `FAULTPROXY${(sequence++).toString(36).toUpperCase().padStart(12, "0")}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function tableOf(request: unknown): string | undefined {
  if (typeof request !== "object" || request === null) return undefined;
  const { TableName, RequestItems } = request as { TableName?: unknown; RequestItems?: unknown };
  if (typeof TableName === "string") return TableName;
  if (typeof RequestItems === "object" && RequestItems !== null) return Object.keys(RequestItems)[0];
  return undefined;
}

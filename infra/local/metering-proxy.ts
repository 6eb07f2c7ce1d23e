import { once } from "node:events";
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { crc32 } from "node:zlib";
import type { RequestMeter } from "./request-meter.ts";

/**
 * A proxy that meters what goes through it: in front of dynalite for the functions (each call and
 * the capacity units it consumed) and in front of the WebSocket API's `@connections` (each post).
 * The stack's own clients (provisioning, the TTL sweeper standing in for DynamoDB's free TTL) talk
 * to the emulators directly and are not metered.
 */
export type MeteringProxy = { readonly url: string; close(): Promise<void> };

export type ProxiedRequest = { readonly method: string; readonly url: string; readonly headers: IncomingHttpHeaders; readonly body: Buffer };
export type ProxiedAnswer = { readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: Buffer };

/**
 * What to do with one exchange: the body to forward (the request's own if absent) and, once the
 * upstream has answered, the body to send back (its own if absent).
 */
export type Exchange = { readonly body?: Buffer; answered?(answer: ProxiedAnswer): Buffer | undefined };

export async function startMeteringProxy(options: { readonly target: string; readonly host: string; readonly exchange: (request: ProxiedRequest) => Exchange }): Promise<MeteringProxy> {
  const target = new URL(options.target);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const request: ProxiedRequest = { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body: Buffer.concat(chunks) };
      const exchange = options.exchange(request);
      const body = exchange.body ?? request.body;
      const headers = { ...req.headers, "content-length": String(body.length) };
      delete headers["transfer-encoding"];
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers, agent }, (answer) => {
        const parts: Buffer[] = [];
        answer.on("data", (chunk: Buffer) => parts.push(chunk));
        answer.on("error", () => res.destroy());
        answer.on("end", () => {
          const original = Buffer.concat(parts);
          const status = answer.statusCode ?? 502;
          const replaced = exchange.answered?.({ status, headers: answer.headers, body: original });
          const out = { ...answer.headers };
          delete out["transfer-encoding"];
          if (replaced !== undefined) {
            out["content-length"] = String(replaced.length);
            // DynamoDB's answers carry a checksum of their body.
            if (out["x-amz-crc32"] !== undefined) out["x-amz-crc32"] = String(crc32(replaced));
          }
          res.writeHead(status, out);
          res.end(replaced ?? original);
        });
      });
      upstream.on("error", () => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
        res.end('{"message":"Bad Gateway"}');
      });
      upstream.end(body);
    })().catch(() => res.destroy());
  });
  server.listen(0, options.host);
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the metering proxy did not bind a TCP port");
  return {
    url: `http://${options.host}:${address.port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}

const DYNAMODB_READS = new Set(["GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"]);
const DYNAMODB_WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"]);

type Consumed = { CapacityUnits?: number };

/** The tables (and index) a call names: its own, or its batch's. */
function tablesOf(input: { TableName?: string; IndexName?: string; RequestItems?: Record<string, unknown> }): string[] {
  if (input.TableName !== undefined) return [input.IndexName === undefined ? input.TableName : `${input.TableName}/${input.IndexName}`];
  return Object.keys(input.RequestItems ?? {}).toSorted();
}

/**
 * DynamoDB's JSON protocol: each call counted by its action, and the capacity units it consumed,
 * as the table's ConsumedCapacity says (dynalite computes it from the items' sizes as DynamoDB
 * does, for the table alone: index writes are not in it). A call that did not ask for them is sent
 * asking (`TOTAL`), and the answer's ConsumedCapacity is taken out again before it goes back. A
 * write refused by its condition still consumes a write unit in DynamoDB: counted as one.
 */
export function dynamoDbExchange(meter: RequestMeter): (request: ProxiedRequest) => Exchange {
  return (request) => {
    const target = String(request.headers["x-amz-target"] ?? "");
    const action = target.slice(target.indexOf(".") + 1);
    meter.request("dynamodb", action || "unknown");
    if (!DYNAMODB_READS.has(action) && !DYNAMODB_WRITES.has(action)) return {};
    let input: { ReturnConsumedCapacity?: string; TableName?: string; IndexName?: string; RequestItems?: Record<string, unknown> };
    try {
      input = JSON.parse(request.body.toString("utf8")) as typeof input;
    } catch {
      return {};
    }
    meter.dynamoDbTable(action, tablesOf(input));
    const asked = input.ReturnConsumedCapacity === "TOTAL" || input.ReturnConsumedCapacity === "INDEXES";
    const kind = DYNAMODB_READS.has(action) ? "read" : "write";
    return {
      ...(!asked && { body: Buffer.from(JSON.stringify({ ...input, ReturnConsumedCapacity: "TOTAL" })) }),
      answered: (answer) => {
        let output: { ConsumedCapacity?: Consumed | Consumed[]; __type?: string };
        try {
          output = JSON.parse(answer.body.toString("utf8")) as typeof output;
        } catch {
          return undefined;
        }
        if (answer.status !== 200) {
          if (kind === "write" && output.__type?.endsWith("ConditionalCheckFailedException")) meter.capacity("write", 1);
          return undefined;
        }
        const consumed = output.ConsumedCapacity;
        const units = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []).reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
        meter.capacity(kind, units);
        if (asked) return undefined;
        delete output.ConsumedCapacity;
        return Buffer.from(JSON.stringify(output));
      },
    };
  };
}

/** The WebSocket API's management calls: `POST /@connections/{id}` is PostToConnection (a message sent), GET and DELETE the others. */
export function connectionsExchange(meter: RequestMeter): (request: ProxiedRequest) => Exchange {
  const actions: Record<string, string> = { POST: "PostToConnection", GET: "GetConnection", DELETE: "DeleteConnection" };
  return (request) => {
    if (request.url.includes("/@connections/")) meter.request("apigateway-websocket", actions[request.method] ?? request.method);
    return {};
  };
}

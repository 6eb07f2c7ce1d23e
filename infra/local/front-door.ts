import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { once } from "node:events";
import { API_GATEWAY_MAX_BODY_BYTES, LAMBDA_MAX_REQUEST_BYTES } from "#shared/core/files";

/**
 * The HTTP API's front door on the embedded stack: what API Gateway and Lambda refuse before any
 * function runs, refused here in their words, the rest passed to serverless-offline untouched.
 * serverless-offline caps bodies at 10 MiB with hapi's own 413 (other words), and runs the
 * handlers in its process, where Lambda's 6 MiB invocation payload is never checked.
 *
 * - over 10 MiB of body: 413 `HTTP content length exceeded 10485760 bytes.` (API Gateway)
 * - an event over 6 MiB (the body as the event carries it, base64 for a binary one, plus the
 *   request's headers and the event's envelope): 413 `{"message": "Request Too Long"}` (Lambda)
 * - a function that failed (threw, or timed out early through middy): 500
 *   `{"message":"Internal Server Error"}`, as an HTTP API answers a Lambda function error.
 *   serverless-offline answers 200 with Lambda's error object as the body for a payload 2.0
 *   route, which a client would take for success.
 */
export type FrontDoor = { readonly port: number; close(): Promise<void> };

/** The HTTP API event's fields besides the body and the headers (requestContext and the rest). */
const EVENT_ENVELOPE_BYTES = 1_500;
/** serverless-offline's detectEncoding: these bodies reach the handler base64-encoded (AWS too). */
const BINARY = ["application/octet-stream", "multipart/form-data"];

/** The size of the Lambda event a request becomes, as API Gateway would send it. */
export function eventBytes(request: { readonly url: string; readonly headers: Readonly<Record<string, string | string[] | undefined>> }, bodyBytes: number): number {
  const contentType = String(request.headers["content-type"] ?? "");
  const body = BINARY.some((type) => contentType.includes(type)) ? 4 * Math.ceil(bodyBytes / 3) : bodyBytes;
  return body + Buffer.byteLength(JSON.stringify(request.headers)) + 2 * Buffer.byteLength(request.url) + EVENT_ENVELOPE_BYTES;
}

function refuseTooBig(res: ServerResponse): void {
  res.writeHead(413, { "content-type": "text; charset=utf-8" });
  res.end(`HTTP content length exceeded ${API_GATEWAY_MAX_BODY_BYTES} bytes.`);
}

function refuseTooLong(res: ServerResponse): void {
  res.writeHead(413, { "content-type": "application/json", "x-amzn-errortype": "BadRequestException" });
  res.end('{"message": "Request Too Long"}');
}

/**
 * The body, or undefined when it passed API Gateway's limit (the answer then sent). The rest of
 * a refused body is read and dropped first: answering while the client still writes would cut
 * its upload off (EPIPE) before it reads the 413.
 */
async function readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total <= API_GATEWAY_MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (total > API_GATEWAY_MAX_BODY_BYTES) {
    refuseTooBig(res);
    return undefined;
  }
  return Buffer.concat(chunks);
}

/** Whether a body is Lambda's error object (errorMessage, errorType, stackTrace), which serverless-offline passes on as a 200. */
export function isFunctionError(body: string): boolean {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === "object" && value !== null && "errorMessage" in value && "errorType" in value && !("statusCode" in value);
  } catch {
    return false;
  }
}

async function forwardUnlessFunctionError(answer: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of answer as AsyncIterable<Buffer>) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  if (isFunctionError(body.toString("utf8"))) {
    res.writeHead(500, { "content-type": "application/json" });
    res.end('{"message":"Internal Server Error"}');
    return;
  }
  res.writeHead(200, answer.headers);
  res.end(body);
}

export type FrontDoorOptions = {
  readonly host: string;
  readonly port: number;
  readonly upstreamPort: number;
  /** Each request as it arrives (API Gateway bills every one, refused or not). */
  readonly onRequest?: ((method: string, url: string) => void) | undefined;
};

export async function startFrontDoor(options: FrontDoorOptions): Promise<FrontDoor> {
  const server = createServer((req, res) => {
    options.onRequest?.(req.method ?? "GET", req.url ?? "/");
    void (async () => {
      const body = await readBody(req, res);
      if (body === undefined) return;
      if (eventBytes({ url: req.url ?? "/", headers: req.headers }, body.length) > LAMBDA_MAX_REQUEST_BYTES) return refuseTooLong(res);
      const headers = { ...req.headers, "content-length": String(body.length) };
      delete headers["transfer-encoding"];
      const upstream = httpRequest({ host: options.host, port: options.upstreamPort, method: req.method, path: req.url, headers }, (answer) => {
        if (answer.statusCode === 200 && String(answer.headers["content-type"]).includes("application/json")) return void forwardUnlessFunctionError(answer, res);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", () => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
        res.end('{"message":"Internal Server Error"}');
      });
      upstream.end(body);
    })().catch(() => res.destroy());
  });
  server.listen(options.port, options.host);
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the front door did not bind a TCP port");
  return {
    port: address.port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * What the pipeline asks of AWS, counted where AWS would bill it: at the embedded stack's servers
 * (fauxqs's SQS and S3, dynalite behind a metering proxy, the WebSocket API's `@connections`,
 * the HTTP API's front door) and from serverless-offline's own report of each Lambda invocation.
 * A bench reads the meter before and after a run; the difference is the run's bill of requests.
 */

/** AWS services as their price lists name them. */
export type MeteredService = "sqs" | "s3" | "dynamodb" | "apigateway-http" | "apigateway-websocket" | "lambda";

export type LambdaUse = { readonly invocations: number; readonly billed_ms: number; readonly gb_seconds: number };

/** A meter's totals: requests by service and action, DynamoDB's capacity units, Lambda's use by function. */
export type MeterReading = {
  readonly requests: Readonly<Partial<Record<MeteredService, Readonly<Record<string, number>>>>>;
  /** DynamoDB capacity units consumed, as the table's ConsumedCapacity says (reads: 4 KB units; writes: 1 KB). */
  readonly dynamodb_capacity: { readonly read_units: number; readonly write_units: number };
  /** By serverless.yml function name. */
  readonly lambda: Readonly<Record<string, LambdaUse>>;
  /** DynamoDB's reads and writes by action and what they touched (`Query jobs/route-finished-index`): which part of the pipeline asks. */
  readonly dynamodb_by_table: Readonly<Record<string, number>>;
};

export const emptyReading = (): MeterReading => ({ requests: {}, dynamodb_capacity: { read_units: 0, write_units: 0 }, lambda: {}, dynamodb_by_table: {} });

export class RequestMeter {
  readonly #requests = new Map<MeteredService, Map<string, number>>();
  #readUnits = 0;
  #writeUnits = 0;
  readonly #lambda = new Map<string, { invocations: number; billedMs: number; mbMs: number }>();
  readonly #dynamoDbByTable = new Map<string, number>();

  request(service: MeteredService, action: string, count = 1): void {
    let actions = this.#requests.get(service);
    if (!actions) this.#requests.set(service, (actions = new Map()));
    actions.set(action, (actions.get(action) ?? 0) + count);
  }

  /** A DynamoDB read or write by what it touched (counted under `request` too). */
  dynamoDbTable(action: string, tables: readonly string[]): void {
    const key = `${action} ${tables.join(",")}`;
    this.#dynamoDbByTable.set(key, (this.#dynamoDbByTable.get(key) ?? 0) + 1);
  }

  capacity(kind: "read" | "write", units: number): void {
    if (!(units >= 0)) return;
    if (kind === "read") this.#readUnits += units;
    else this.#writeUnits += units;
  }

  /** One Lambda invocation (counted under "lambda" / Invoke too), its billed duration and the function's memory. */
  invocation(functionName: string, billedMs: number, memoryMb: number): void {
    this.request("lambda", "Invoke");
    const use = this.#lambda.get(functionName) ?? { invocations: 0, billedMs: 0, mbMs: 0 };
    use.invocations++;
    use.billedMs += billedMs;
    use.mbMs += billedMs * memoryMb;
    this.#lambda.set(functionName, use);
  }

  read(): MeterReading {
    return {
      requests: Object.fromEntries([...this.#requests].map(([service, actions]) => [service, Object.fromEntries(actions)])),
      dynamodb_capacity: { read_units: this.#readUnits, write_units: this.#writeUnits },
      dynamodb_by_table: Object.fromEntries(this.#dynamoDbByTable),
      lambda: Object.fromEntries(
        [...this.#lambda].map(([name, use]) => [name, { invocations: use.invocations, billed_ms: use.billedMs, gb_seconds: use.mbMs / 1024 / 1000 }]),
      ),
    };
  }
}

const minusRecord = (after: Readonly<Record<string, number>>, before: Readonly<Record<string, number>> | undefined) =>
  Object.fromEntries(Object.entries(after).flatMap(([k, v]) => (v - (before?.[k] ?? 0) === 0 ? [] : [[k, v - (before?.[k] ?? 0)]])));

/** What was metered between two readings of the same meter. */
export function readingDelta(after: MeterReading, before: MeterReading): MeterReading {
  const requests = Object.fromEntries(
    Object.entries(after.requests).flatMap(([service, actions]) => {
      const delta = minusRecord(actions, before.requests[service as MeteredService]);
      return Object.keys(delta).length === 0 ? [] : [[service, delta]];
    }),
  );
  const lambda = Object.fromEntries(
    Object.entries(after.lambda).flatMap(([name, use]): [string, LambdaUse][] => {
      const was = before.lambda[name];
      const invocations = use.invocations - (was?.invocations ?? 0);
      return invocations === 0 ? [] : [[name, { invocations, billed_ms: use.billed_ms - (was?.billed_ms ?? 0), gb_seconds: use.gb_seconds - (was?.gb_seconds ?? 0) }]];
    }),
  );
  return {
    requests,
    dynamodb_capacity: {
      read_units: after.dynamodb_capacity.read_units - before.dynamodb_capacity.read_units,
      write_units: after.dynamodb_capacity.write_units - before.dynamodb_capacity.write_units,
    },
    lambda,
    dynamodb_by_table: minusRecord(after.dynamodb_by_table, before.dynamodb_by_table),
  };
}

/** The requests of a reading, all services together. */
export function totalRequests(reading: MeterReading): number {
  return Object.values(reading.requests).reduce((sum, actions) => sum + Object.values(actions).reduce((a, b) => a + b, 0), 0);
}

/**
 * serverless-offline's line for each invocation that returned (`(λ: batcher) RequestId: …  Duration:
 * 12.34 ms  Billed Duration: 13 ms`), as its output comes, in chunks that may split lines. An
 * invocation that threw prints none: Lambda would bill it, so the count is a lower bound there.
 */
export function offlineInvocationReader(onInvocation: (functionKey: string, billedMs: number) => void): (chunk: string) => void {
  let partial = "";
  return (chunk) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      const match = /\(λ: ([^)]+)\) RequestId: \S+\s+Duration: [\d.]+ ms\s+Billed Duration: (\d+) ms/.exec(line);
      if (match) onInvocation(match[1] as string, Number(match[2]));
    }
  };
}

/**
 * Which service and action a request to fauxqs is: SQS's JSON protocol names its action in
 * `X-Amz-Target` (`AmazonSQS.SendMessage`); other requests are S3's, path-style, but fauxqs's own
 * health and inspection routes, which AWS has not.
 */
export function fauxqsRequest(method: string, url: string, target: string | undefined): { service: "sqs" | "s3"; action: string } | undefined {
  if (target?.startsWith("AmazonSQS.")) return { service: "sqs", action: target.slice("AmazonSQS.".length) };
  if (url.startsWith("/_fauxqs") || url === "/health" || (method === "POST" && url === "/")) return undefined;
  return { service: "s3", action: s3Action(method, url) };
}

/** The S3 operation a path-style request is, as S3's price list groups them (the operation's name where the method says it). */
export function s3Action(method: string, url: string): string {
  const { pathname, searchParams } = new URL(url, "http://local");
  const isObject = pathname.split("/").filter(Boolean).length > 1;
  if (searchParams.has("uploads") || searchParams.has("uploadId")) return method === "POST" ? "MultipartUpload" : method === "PUT" ? "UploadPart" : `${method} multipart`;
  switch (method) {
    case "GET":
      return isObject ? "GetObject" : "ListObjects";
    case "HEAD":
      return isObject ? "HeadObject" : "HeadBucket";
    case "PUT":
      return isObject ? "PutObject" : "CreateBucket";
    case "DELETE":
      return isObject ? "DeleteObject" : "DeleteBucket";
    case "POST":
      return searchParams.has("delete") ? "DeleteObjects" : "PostObject";
    default:
      return method;
  }
}

import type { MeterReading, MeteredService } from "#local/request-meter";
import type { TargetCheck } from "./targets.ts";

/**
 * What the serverless half of a run costs per job, from what the embedded stack metered
 * (infra/local/request-meter.ts), at AWS's public list prices. Pure: tested on its own.
 *
 * us-east-1, on-demand, no free tier, read on 2026-12-07 from AWS's pricing pages (docs/cost.md
 * lists them with their addresses). The functions run on arm64 (serverless.yml).
 */
export const AWS_LIST_PRICES = {
  region: "us-east-1",
  read_on: "2026-12-07",
  /** Standard queue, per request (the first 100 billion a month). */
  sqs_request: 0.4 / 1e6,
  /** On-demand table: a write request unit (1 KB), a read request unit (4 KB, strongly consistent; half for eventually consistent). */
  dynamodb_write_unit: 0.625 / 1e6,
  dynamodb_read_unit: 0.125 / 1e6,
  lambda_request: 0.2 / 1e6,
  /** arm64, the first 7.5 billion GB-seconds a month. */
  lambda_gb_second_arm64: 0.0000133334,
  /** HTTP API, per request (the first 300 million a month). */
  http_api_request: 1.0 / 1e6,
  /** WebSocket API, per message in either direction (32 KB units; the first billion a month). */
  websocket_message: 1.0 / 1e6,
  /** S3 Standard: PUT, COPY, POST, LIST; GET and the rest. */
  s3_put_request: 0.005 / 1e3,
  s3_get_request: 0.0004 / 1e3,
} as const;

/** The function whose invocations are the WebSocket messages clients send (its `$default` route). */
export const WEBSOCKET_MESSAGE_FUNCTION = "wsMessage";

/**
 * The requests the pipeline makes of AWS services, as issue 18 counted them: SQS, DynamoDB, S3 and
 * the WebSocket API's `@connections` calls. Not in it, counted beside: the clients' own requests
 * (HTTP API calls, WebSocket messages they send) and the Lambda invocations that run the code.
 */
const PIPELINE_SERVICES: readonly MeteredService[] = ["sqs", "dynamodb", "s3", "apigateway-websocket"];

export type ServerlessCost = {
  /** Jobs the run's requests are divided among (accepted by the API, or batch lines). */
  readonly jobs: number;
  /** SQS + DynamoDB + S3 + `@connections` calls per job (PIPELINE_SERVICES). */
  readonly requests_per_job: number;
  /** The same by service, and by `service action`, largest first. */
  readonly by_service_per_job: Readonly<Record<string, number>>;
  readonly by_action_per_job: Readonly<Record<string, number>>;
  readonly dynamodb_units_per_job: { readonly read: number; readonly write: number };
  /** DynamoDB's reads and writes by action and table (and index), largest first: which part of the pipeline asks. */
  readonly dynamodb_by_table_per_job: Readonly<Record<string, number>>;
  /** HTTP API requests and Lambda invocations per job (not in requests_per_job). */
  readonly http_api_requests_per_job: number;
  readonly lambda_invocations_per_job: number;
  readonly lambda_gb_seconds_per_job: number;
  readonly usd_per_job: { readonly total: number; readonly sqs: number; readonly dynamodb: number; readonly s3: number; readonly lambda: number; readonly apigateway: number };
  /**
   * Lambda's GB-seconds priced, per job: in usd_per_job.lambda, and said apart because the
   * durations are the embedded stack's, on a shared machine (a handler starved of CPU there runs
   * longer than in Lambda), where every other figure is a count.
   */
  readonly lambda_duration_usd_per_job: number;
  /** The GPU's cost per job at the engine's ceiling (its cheapest: every GPU second at work). */
  readonly gpu_usd_per_job: number;
  /** usd_per_job.total over gpu_usd_per_job. */
  readonly share_of_gpu: number;
  /** Everything metered, for a closer look. */
  readonly metered: MeterReading;
};

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

/** S3's two request classes. */
const S3_PUT_CLASS = new Set(["PutObject", "CreateBucket", "ListObjects", "PostObject", "MultipartUpload", "UploadPart", "DeleteObjects"]);

export function serverlessCost(metered: MeterReading, jobs: number, gpuUsdPerJob: number): ServerlessCost {
  const per = (n: number) => (jobs > 0 ? n / jobs : Number.NaN);
  const actions = PIPELINE_SERVICES.flatMap((service) => Object.entries(metered.requests[service] ?? {}).map(([action, n]) => [`${service} ${action}`, n] as const));
  const byService = Object.fromEntries(PIPELINE_SERVICES.flatMap((service) => (metered.requests[service] ? [[service, per(sum(Object.values(metered.requests[service])))]] : [])));
  const count = (service: MeteredService) => sum(Object.values(metered.requests[service] ?? {}));
  const lambdaUses = Object.values(metered.lambda);
  const invocations = sum(lambdaUses.map((u) => u.invocations));
  const gbSeconds = sum(lambdaUses.map((u) => u.gb_seconds));
  const inbound = metered.lambda[WEBSOCKET_MESSAGE_FUNCTION]?.invocations ?? 0;
  const s3 = Object.entries(metered.requests.s3 ?? {}).reduce((usd, [action, n]) => usd + n * (S3_PUT_CLASS.has(action) ? AWS_LIST_PRICES.s3_put_request : AWS_LIST_PRICES.s3_get_request), 0);
  const p = AWS_LIST_PRICES;
  const usd = {
    sqs: count("sqs") * p.sqs_request,
    dynamodb: metered.dynamodb_capacity.read_units * p.dynamodb_read_unit + metered.dynamodb_capacity.write_units * p.dynamodb_write_unit,
    s3,
    lambda: invocations * p.lambda_request + gbSeconds * p.lambda_gb_second_arm64,
    apigateway: count("apigateway-http") * p.http_api_request + ((metered.requests["apigateway-websocket"]?.PostToConnection ?? 0) + inbound) * p.websocket_message,
  };
  const total = usd.sqs + usd.dynamodb + usd.s3 + usd.lambda + usd.apigateway;
  return {
    jobs,
    requests_per_job: per(sum(actions.map(([, n]) => n))),
    by_service_per_job: byService,
    by_action_per_job: Object.fromEntries(actions.toSorted((a, b) => b[1] - a[1]).map(([name, n]) => [name, per(n)])),
    dynamodb_units_per_job: { read: per(metered.dynamodb_capacity.read_units), write: per(metered.dynamodb_capacity.write_units) },
    dynamodb_by_table_per_job: Object.fromEntries(Object.entries(metered.dynamodb_by_table).toSorted((a, b) => b[1] - a[1]).map(([name, n]) => [name, per(n)])),
    http_api_requests_per_job: per(count("apigateway-http")),
    lambda_invocations_per_job: per(invocations),
    lambda_gb_seconds_per_job: per(gbSeconds),
    usd_per_job: { total: per(total), sqs: per(usd.sqs), dynamodb: per(usd.dynamodb), s3: per(usd.s3), lambda: per(usd.lambda), apigateway: per(usd.apigateway) },
    lambda_duration_usd_per_job: per(gbSeconds * p.lambda_gb_second_arm64),
    gpu_usd_per_job: gpuUsdPerJob,
    share_of_gpu: per(total) / gpuUsdPerJob,
    metered,
  };
}

/** A GPU's cost per job while it serves `jobsPerMinute`: its price over the jobs it answers in an hour. */
export function gpuUsdPerJob(usdPerGpuHour: number, gpus: number, jobsPerMinute: number): number {
  return jobsPerMinute > 0 ? (usdPerGpuHour * gpus) / (jobsPerMinute * 60) : Number.NaN;
}

/** The largest contributors, as `service action n.nn` lines. */
export function biggestContributors(cost: ServerlessCost, count = 5): string[] {
  return Object.entries(cost.by_action_per_job)
    .slice(0, count)
    .map(([name, n]) => `${name} ${n.toFixed(2)}`);
}

/** Issue 15's and issue 18's targets for the serverless half (the adaptive policy, Poisson 400 rpm: every job answered). */
export const SERVERLESS_TARGETS = { requestsPerJobAt400: 12, requestsPerSingleJob: 10, requestsPerBatchLine: 3, shareOfGpu7b: 0.03 } as const;

type WithServerless = { readonly name: string; readonly policies: readonly { readonly name: string; readonly serverless?: (ServerlessCost & { readonly kind: string }) | null }[] };

export function serverlessTargets(scenarios: readonly WithServerless[], adaptive: string, batchLine?: ServerlessCost): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const at400 = scenarios.find((s) => s.name === "poisson-400")?.policies.find((p) => p.name === adaptive)?.serverless;
  const t = SERVERLESS_TARGETS;
  if (at400) {
    const n = at400.requests_per_job;
    const top = biggestContributors(at400, 3).join(", ");
    checks.push({ name: "aws_requests_per_job_at_400rpm", target: `<= ${t.requestsPerJobAt400} (issue 15)`, measured: `${n.toFixed(2)} over ${at400.jobs} jobs (${top})`, value: n, met: n <= t.requestsPerJobAt400 });
    checks.push({ name: "aws_requests_per_single_job", target: `<= ${t.requestsPerSingleJob} (issue 18)`, measured: `${n.toFixed(2)} at 400 rpm`, value: n, met: n <= t.requestsPerSingleJob });
    const share = at400.share_of_gpu;
    checks.push({
      name: "serverless_share_of_gpu_7b",
      target: `<= ${100 * t.shareOfGpu7b}% of the GPU's cost per job at the engine's ceiling`,
      measured: `$${at400.usd_per_job.total.toExponential(2)} / $${at400.gpu_usd_per_job.toExponential(2)} = ${(100 * share).toFixed(2)}%`,
      value: share,
      met: share <= t.shareOfGpu7b,
    });
  }
  if (batchLine) {
    const n = batchLine.requests_per_job;
    checks.push({ name: "aws_requests_per_batch_line", target: `<= ${t.requestsPerBatchLine} (issue 18)`, measured: `${n.toFixed(2)} over ${batchLine.jobs} lines (${biggestContributors(batchLine, 3).join(", ")})`, value: n, met: n <= t.requestsPerBatchLine });
  }
  return checks;
}

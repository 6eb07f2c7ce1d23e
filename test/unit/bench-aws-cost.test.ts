import { describe, expect, it } from "vitest";
import { RequestMeter } from "#local/request-meter";
import { AWS_LIST_PRICES, biggestContributors, gpuUsdPerJob, serverlessCost, serverlessTargets } from "../../tools/bench/aws-cost.ts";

/** 100 jobs' worth of a pipeline's requests. */
function hundredJobs() {
  const meter = new RequestMeter();
  meter.request("sqs", "SendMessage", 100);
  meter.request("sqs", "ReceiveMessage", 50);
  meter.request("sqs", "DeleteMessageBatch", 10);
  meter.request("dynamodb", "UpdateItem", 300);
  meter.request("dynamodb", "GetItem", 200);
  meter.capacity("write", 300);
  meter.capacity("read", 100);
  meter.request("apigateway-websocket", "PostToConnection", 200);
  meter.request("apigateway-http", "POST /v1/jobs", 100);
  meter.request("s3", "GetObject", 10);
  for (let i = 0; i < 10; i++) meter.invocation("batcher", 2000, 1024);
  for (let i = 0; i < 100; i++) meter.invocation("jobs", 50, 512);
  for (let i = 0; i < 20; i++) meter.invocation("wsMessage", 10, 512);
  return meter.read();
}

describe("the serverless half's cost per job", () => {
  it("counts SQS, DynamoDB, S3 and @connections calls per job; HTTP API requests and invocations beside them", () => {
    const cost = serverlessCost(hundredJobs(), 100, 1e-3);
    expect(cost.requests_per_job).toBeCloseTo((160 + 500 + 200 + 10) / 100);
    expect(cost.by_service_per_job).toEqual({ sqs: 1.6, dynamodb: 5, s3: 0.1, "apigateway-websocket": 2 });
    expect(Object.keys(cost.by_action_per_job)[0]).toBe("dynamodb UpdateItem");
    expect(biggestContributors(cost, 2)).toEqual(["dynamodb UpdateItem 3.00", "dynamodb GetItem 2.00"]);
    expect(cost.http_api_requests_per_job).toBe(1);
    expect(cost.lambda_invocations_per_job).toBeCloseTo(1.3);
    expect(cost.dynamodb_units_per_job).toEqual({ read: 1, write: 3 });
  });

  it("prices them at the list prices, and sets them beside the GPU's cost per job", () => {
    const cost = serverlessCost(hundredJobs(), 100, 1e-3);
    const p = AWS_LIST_PRICES;
    const gbSeconds = 10 * 2 * 1 + 100 * 0.05 * 0.5 + 20 * 0.01 * 0.5;
    const expected = {
      sqs: 160 * p.sqs_request,
      dynamodb: 300 * p.dynamodb_write_unit + 100 * p.dynamodb_read_unit,
      s3: 10 * p.s3_get_request,
      lambda: 130 * p.lambda_request + gbSeconds * p.lambda_gb_second_arm64,
      // The HTTP API's requests; WebSocket messages out (posts) and in (wsMessage's invocations).
      apigateway: 100 * p.http_api_request + (200 + 20) * p.websocket_message,
    };
    const total = Object.values(expected).reduce((a, b) => a + b, 0);
    expect(cost.usd_per_job.total).toBeCloseTo(total / 100, 12);
    expect(cost.usd_per_job.lambda).toBeCloseTo(expected.lambda / 100, 12);
    expect(cost.lambda_duration_usd_per_job).toBeCloseTo((gbSeconds * p.lambda_gb_second_arm64) / 100, 12);
    expect(cost.share_of_gpu).toBeCloseTo(total / 100 / 1e-3, 9);
  });

  it("the GPU's cost per job: its price over the jobs it answers in an hour", () => {
    expect(gpuUsdPerJob(14.13, 1, 557)).toBeCloseTo(14.13 / (557 * 60), 12);
    expect(gpuUsdPerJob(14.13, 2, 0)).toBeNaN();
  });

  it("checks issue 15's and 18's targets on the adaptive policy at 400 rpm, and a batch line's when there is one", () => {
    const cost = { ...serverlessCost(hundredJobs(), 100, 1e-3), kind: "single" };
    const checks = serverlessTargets([{ name: "poisson-400", policies: [{ name: "d-adaptive", serverless: cost }] }], "d-adaptive", serverlessCost(hundredJobs(), 400, 1e-3));
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    expect(byName.aws_requests_per_job_at_400rpm?.met).toBe(true);
    expect(byName.aws_requests_per_single_job?.met).toBe(true);
    expect(byName.serverless_share_of_gpu_7b?.value).toBeCloseTo(cost.share_of_gpu);
    expect(byName.aws_requests_per_batch_line?.value).toBeCloseTo(8.7 / 4);
    expect(byName.aws_requests_per_batch_line?.met).toBe(true);
    // 870 requests over 80 jobs: 10.9 a job, within issue 15's 12, past issue 18's 10.
    const heavy = { ...serverlessCost(hundredJobs(), 80, 1e-3), kind: "single" };
    const missed = serverlessTargets([{ name: "poisson-400", policies: [{ name: "d-adaptive", serverless: heavy }] }], "d-adaptive");
    expect(missed.find((c) => c.name === "aws_requests_per_job_at_400rpm")?.met).toBe(true);
    expect(missed.find((c) => c.name === "aws_requests_per_single_job")?.met).toBe(false);
    expect(serverlessTargets([], "d-adaptive")).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { fauxqsRequest, offlineInvocationReader, readingDelta, RequestMeter, s3Action, totalRequests } from "#local/request-meter";
import { httpApiAction } from "#local/stack-metering";

describe("the request meter", () => {
  it("counts requests by service and action, capacity units, and each function's invocations and GB-seconds", () => {
    const meter = new RequestMeter();
    meter.request("sqs", "SendMessage");
    meter.request("sqs", "SendMessage");
    meter.request("dynamodb", "UpdateItem", 3);
    meter.capacity("write", 2);
    meter.capacity("read", 0.5);
    meter.invocation("batcher", 1500, 1024);
    meter.invocation("jobs", 40, 512);
    const reading = meter.read();
    expect(reading.requests).toEqual({ sqs: { SendMessage: 2 }, dynamodb: { UpdateItem: 3 }, lambda: { Invoke: 2 } });
    expect(reading.dynamodb_capacity).toEqual({ read_units: 0.5, write_units: 2 });
    expect(reading.lambda.batcher).toEqual({ invocations: 1, billed_ms: 1500, gb_seconds: 1.5 });
    expect(reading.lambda.jobs?.gb_seconds).toBeCloseTo(0.02);
    expect(totalRequests(reading)).toBe(7);
  });

  it("gives what was metered between two readings, leaving out what did not change", () => {
    const meter = new RequestMeter();
    meter.request("sqs", "ReceiveMessage", 10);
    meter.request("s3", "PutObject");
    meter.invocation("batcher", 100, 1024);
    const before = meter.read();
    meter.request("sqs", "ReceiveMessage", 4);
    meter.request("dynamodb", "GetItem");
    meter.dynamoDbTable("GetItem", ["jobs"]);
    meter.capacity("read", 1);
    meter.invocation("batcher", 300, 1024);
    const delta = readingDelta(meter.read(), before);
    expect(delta.dynamodb_by_table).toEqual({ "GetItem jobs": 1 });
    expect(delta.requests).toEqual({ sqs: { ReceiveMessage: 4 }, dynamodb: { GetItem: 1 }, lambda: { Invoke: 1 } });
    expect(delta.dynamodb_capacity).toEqual({ read_units: 1, write_units: 0 });
    expect(delta.lambda.batcher?.invocations).toBe(1);
    expect(delta.lambda.batcher?.billed_ms).toBe(300);
    expect(delta.lambda.batcher?.gb_seconds).toBeCloseTo(0.3);
  });
});

describe("serverless-offline's invocation lines", () => {
  it("are read as they come, a line split across chunks included; other output is not an invocation", () => {
    const seen: [string, number][] = [];
    const read = offlineInvocationReader((fn, ms) => seen.push([fn, ms]));
    read("GET /v1/jobs (λ: jobs)\n(λ: jobs) RequestId: 2b9c-11  Duration: 12.34 ms  Billed Duration: 13 ms\n(λ: batc");
    read("her) RequestId: 77aa  Duration: 5012.00 ms  Billed Duration: 5012 ms\noffline: something else\n");
    expect(seen).toEqual([["jobs", 13], ["batcher", 5012]]);
  });
});

describe("what a request to the stack's servers is", () => {
  it("fauxqs: SQS by its X-Amz-Target, S3 by method and path, its own routes not at all", () => {
    expect(fauxqsRequest("POST", "/", "AmazonSQS.DeleteMessageBatch")).toEqual({ service: "sqs", action: "DeleteMessageBatch" });
    expect(fauxqsRequest("PUT", "/bucket/files/a.jsonl", undefined)).toEqual({ service: "s3", action: "PutObject" });
    expect(fauxqsRequest("GET", "/_fauxqs/queues", undefined)).toBeUndefined();
    expect(fauxqsRequest("GET", "/health", undefined)).toBeUndefined();
    expect(s3Action("GET", "/bucket/key?X-Amz-Signature=abc")).toBe("GetObject");
    expect(s3Action("GET", "/bucket?list-type=2")).toBe("ListObjects");
    expect(s3Action("POST", "/bucket/key?uploads")).toBe("MultipartUpload");
    expect(s3Action("PUT", "/bucket/key?partNumber=1&uploadId=x")).toBe("UploadPart");
    expect(s3Action("HEAD", "/bucket/key")).toBe("HeadObject");
  });

  it("the HTTP API: by method and route, ids left out", () => {
    expect(httpApiAction("POST", "/v1/jobs")).toBe("POST /v1/jobs");
    expect(httpApiAction("GET", "/v1/jobs/job_123?x=1")).toBe("GET /v1/jobs");
  });
});

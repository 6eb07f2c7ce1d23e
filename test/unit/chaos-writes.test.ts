import { describe, expect, it } from "vitest";
import type { DynamoDbExchange } from "#local/dynamodb-fault-proxy";
import { isBackwards, jobWritesOf, setAssignments, StatusTracker, WriteLog } from "../../tools/chaos/writes.ts";

const JOBS = "batchline-x-jobs";

function exchange(operation: string, request: unknown, change: Partial<DynamoDbExchange> = {}): DynamoDbExchange {
  const table = (request as { TableName?: string }).TableName ?? Object.keys((request as { RequestItems?: object }).RequestItems ?? {})[0];
  return { operation, table, request, fault: "none", faultKind: undefined, upstreamStatus: 200, upstreamBody: "{}", status: 200, at: 0, ...change };
}

/** The UpdateItem the job store sends to finish a job (shared/aws/dynamodb-job-store.ts). */
const finish = (jobId: string, status = "SUCCEEDED", change: Partial<DynamoDbExchange> = {}) =>
  exchange("UpdateItem", {
    TableName: JOBS,
    Key: { job_id: { S: jobId } },
    UpdateExpression: "SET #status = :status, #detail = :detail, finished_at = :at",
    ConditionExpression: "#status = :running AND attempt = :attempt",
    ExpressionAttributeNames: { "#status": "status", "#detail": status === "SUCCEEDED" ? "result" : "error" },
    ExpressionAttributeValues: { ":status": { S: status }, ":detail": { M: {} }, ":at": { S: "t" }, ":running": { S: "RUNNING" }, ":attempt": { N: "1" } },
  }, change);

const claim = (jobId: string) =>
  exchange("UpdateItem", {
    TableName: JOBS,
    Key: { job_id: { S: jobId } },
    UpdateExpression: "SET #status = :running, started_at = :at, gpu_batch_id = :gpuBatch ADD attempt :one REMOVE waiting_reason",
    ExpressionAttributeNames: { "#status": "status" },
    ExpressionAttributeValues: { ":running": { S: "RUNNING" }, ":queued": { S: "QUEUED" }, ":at": { S: "t" }, ":window": { S: "w" }, ":one": { N: "1" } },
  });

describe("the chaos suite's reading of DynamoDB writes", () => {
  it("finds what a SET clause assigns, through attribute names", () => {
    const assigned = setAssignments("SET #status = :s, #d = :d, finished_at = :at ADD attempt :one REMOVE waiting_reason", { "#status": "status", "#d": "result" });
    expect(Object.fromEntries(assigned)).toEqual({ status: ":s", result: ":d", finished_at: ":at" });
    expect(setAssignments("ADD used :n", {}).size).toBe(0);
  });

  it("reads the job writes of finishes, claims, puts and batch writes, and only those DynamoDB made", () => {
    expect(jobWritesOf(finish("j1"), JOBS)).toEqual([{ jobId: "j1", status: "SUCCEEDED", setsResult: true, operation: "UpdateItem" }]);
    expect(jobWritesOf(finish("j1", "FAILED"), JOBS)).toEqual([{ jobId: "j1", status: "FAILED", setsResult: false, operation: "UpdateItem" }]);
    expect(jobWritesOf(claim("j1"), JOBS)).toEqual([{ jobId: "j1", status: "RUNNING", setsResult: false, operation: "UpdateItem" }]);
    expect(jobWritesOf(finish("j1", "SUCCEEDED", { upstreamStatus: 400 }), JOBS)).toEqual([]);
    expect(jobWritesOf(finish("j1", "SUCCEEDED", { upstreamStatus: undefined, fault: "before" }), JOBS)).toEqual([]);
    // Written, though the caller was told it failed.
    expect(jobWritesOf(finish("j1", "SUCCEEDED", { fault: "after", status: 500 }), JOBS)).toHaveLength(1);
    expect(jobWritesOf(exchange("PutItem", { TableName: JOBS, Item: { job_id: { S: "j2" }, status: { S: "QUEUED" } } }), JOBS)).toEqual([
      { jobId: "j2", status: "QUEUED", setsResult: false, operation: "PutItem" },
    ]);
    const put = (id: string) => ({ PutRequest: { Item: { job_id: { S: id }, status: { S: "QUEUED" } } } });
    const batch = exchange("BatchWriteItem", { RequestItems: { [JOBS]: [put("a"), put("b")] } }, {
      upstreamBody: JSON.stringify({ UnprocessedItems: { [JOBS]: [put("b")] } }),
    });
    expect(jobWritesOf(batch, JOBS).map((w) => w.jobId)).toEqual(["a"]);
    expect(jobWritesOf(exchange("UpdateItem", { ...finish("j1").request as object, TableName: "other" }), JOBS)).toEqual([]);
    expect(jobWritesOf(exchange("GetItem", { TableName: JOBS, Key: { job_id: { S: "j1" } } }), JOBS)).toEqual([]);
  });

  it("calls a status backwards when it goes down in rank or from one terminal state to another", () => {
    expect(isBackwards("RUNNING", "QUEUED")).toBe(true);
    expect(isBackwards("SUCCEEDED", "RUNNING")).toBe(true);
    expect(isBackwards("SUCCEEDED", "FAILED")).toBe(true);
    expect(isBackwards("SUCCEEDED", "SUCCEEDED")).toBe(false);
    expect(isBackwards("RUNNING", "RUNNING")).toBe(false);
    expect(isBackwards("QUEUED", "CANCELLED")).toBe(false);
    const tracker = new StatusTracker("test");
    for (const status of ["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED", "RUNNING", "SUCCEEDED"]) tracker.observe("j", status);
    expect(tracker.backwards).toEqual([{ jobId: "j", from: "SUCCEEDED", to: "RUNNING", source: "test" }]);
    expect(tracker.last("j")).toBe("SUCCEEDED");
  });

  it("counts results and claims per job from what DynamoDB wrote", () => {
    const log = new WriteLog(JOBS);
    log.observe(claim("j1"));
    log.observe(claim("j1"));
    log.observe(finish("j1", "SUCCEEDED", { fault: "after", status: 500 }));
    log.observe(finish("j1", "SUCCEEDED", { upstreamStatus: 400, status: 400 }));
    log.observe(finish("j2"));
    log.observe(finish("j2"));
    expect(Object.fromEntries(log.resultWrites)).toEqual({ j1: 1, j2: 2 });
    expect(Object.fromEntries(log.claims)).toEqual({ j1: 2 });
    expect(log.lostAnswers).toBe(1);
    expect(log.history.get("j1")).toHaveLength(4);
    expect(log.history.get("j1")?.[2]).toContain("200->500 (fault after");
  });

  it("keeps apart the result writes a store crash cut off (they may have landed) from those that never reached it", () => {
    const log = new WriteLog(JOBS);
    const unanswered = (upstreamError: string) => ({ upstreamStatus: undefined, upstreamBody: undefined, upstreamError, status: 502 });
    log.observe(finish("j1", "SUCCEEDED", unanswered("ECONNRESET")));
    log.observe(finish("j2", "SUCCEEDED", unanswered("ECONNREFUSED")));
    log.observe(finish("j3", "FAILED", unanswered("ECONNRESET")));
    expect(Object.fromEntries(log.uncertainResultWrites)).toEqual({ j1: 1 });
    expect(log.resultWrites.size).toBe(0);
    expect(log.terminalWrites.size).toBe(0);
  });
});

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type DynamoDbExchange, type DynamoDbFaultProxy, startDynamoDbFaultProxy } from "#local/dynamodb-fault-proxy";
import { submitJob } from "#shared/app/submit";
import { QuotaReleasingJobStore } from "#shared/app/quotas";
import { DynamoDbJobStore } from "#shared/aws/dynamodb-job-store";
import { DynamoDbBatchStore } from "#shared/aws/dynamodb-batches";
import { DynamoDbUsageMeter } from "#shared/aws/dynamodb-usage";
import { systemClock } from "#shared/aws/deps";
import { ConflictError } from "#shared/core/errors";
import { sleep } from "#shared/sleep";
import type { JobRecord } from "#shared/core/jobs";
import { runBatcher } from "../helpers/batcher.ts";
import { memoryDeps, subscribeToJob } from "../helpers/fakes.ts";
import { createTablesFromInfra, localClientConfig, localDocumentClient, startDynalite, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";

// Found by the chaos suite (npm run chaos): DynamoDB wrote a conditional update, its answer was lost
// (a 500 or a throttling error after the write), the SDK retried, and the retry failed its
// condition on that very write. The job store took its own write for someone else's: a result
// written but never notified (nor its quota slot given back), a cancel not notified, and a job
// created but never enqueued, QUEUED forever. These run the store through the fault proxy.

let dynalite: LocalServer;
let proxy: DynamoDbFaultProxy;
let client: DynamoDBDocumentClient;
let store: DynamoDbJobStore;
let table: string;
let batchesTable: string;
let meter: DynamoDbUsageMeter;
let usageTable: string;
const exchanges: DynamoDbExchange[] = [];
/** Sees each exchange as it ends, before the next request is decided. */
let watch: ((e: DynamoDbExchange) => void) | undefined;

beforeAll(async () => {
  dynalite = await startDynalite();
  const raw = new DynamoDBClient(localClientConfig(dynalite.endpoint));
  const tables = await createTablesFromInfra(raw, `lost-${uniqueSuffix()}`);
  raw.destroy();
  table = Object.values(tables).find((t) => t.endsWith("-jobs")) ?? "";
  batchesTable = Object.values(tables).find((t) => t.endsWith("-batches")) ?? "";
  usageTable = Object.values(tables).find((t) => t.endsWith("-usage")) ?? "";
  proxy = await startDynamoDbFaultProxy({
    target: dynalite.endpoint,
    onExchange: (e) => {
      exchanges.push(e);
      // One lost answer at a time: the SDK's retry then goes through.
      if (e.fault === "after") proxy.setFaults(undefined);
      watch?.(e);
    },
  });
  // The functions' client: the SDK's default retries, which is what turns a lost answer into a failed condition.
  client = localDocumentClient(proxy.url);
  store = new DynamoDbJobStore({ client, tableName: table });
  meter = new DynamoDbUsageMeter({ client, tableName: usageTable });
});

afterAll(async () => {
  client?.destroy();
  await proxy?.close();
  await dynalite?.close();
});

beforeEach(() => {
  exchanges.length = 0;
  watch = undefined;
  proxy.setFaults(undefined);
});

/** The next request of this operation on the jobs table (or `onTable`) is written, and its answer lost. */
function loseAnswerOfNext(operation: "PutItem" | "UpdateItem", onTable = table): void {
  proxy.setFaults({ afterFraction: 1, operations: [operation], tables: [onTable] });
}

/** The writes dynalite really made on the job, whatever the caller was told. */
const writesOf = (jobId: string) =>
  exchanges.filter((e) => e.upstreamStatus === 200 && JSON.stringify(e.request).includes(jobId) && (e.operation === "UpdateItem" || e.operation === "PutItem"));

let n = 0;
function queuedJob(change: Partial<JobRecord> = {}): JobRecord {
  return {
    job_id: `job_lost_${uniqueSuffix()}_${n++}`,
    tenant: "acme",
    status: "QUEUED",
    model: "llama-2-7b",
    request: { prompt: "Say something.", max_tokens: 8 },
    prompt_tokens: 4,
    priority: 5,
    attempt: 0,
    created_at: new Date().toISOString(),
    expires_at: Math.floor(Date.now() / 1000) + 86_400,
    ...change,
  } as JobRecord;
}

const placement = { gpu_batch_id: "win_1", gpu_batch_size: 1, component: "llama-2-7b-ic" };
const result = { text: "one two", prompt_tokens: 4, completion_tokens: 2, finish_reason: "length" as const };

describe("a job store write whose answer was lost", () => {
  it("finish: returns the finished job, written once", async () => {
    const job = queuedJob();
    await store.create([job]);
    const claimed = await store.claim(job.job_id, placement, new Date());
    loseAnswerOfNext("UpdateItem");
    const finished = await store.finish(job.job_id, claimed?.attempt ?? 0, { status: "SUCCEEDED", result }, new Date());
    expect(exchanges.some((e) => e.fault === "after")).toBe(true);
    expect(finished).toMatchObject({ job_id: job.job_id, status: "SUCCEEDED", result, attempt: 1 });
    expect(writesOf(job.job_id).filter((e) => JSON.stringify(e.request).includes("SUCCEEDED"))).toHaveLength(1);
  });

  it("finish: still refuses a write fenced by a later attempt or a cancel", async () => {
    const job = queuedJob();
    await store.create([job]);
    await store.claim(job.job_id, placement, new Date());
    await store.claim(job.job_id, placement, new Date());
    expect(await store.finish(job.job_id, 1, { status: "SUCCEEDED", result }, new Date())).toBeUndefined();
    await store.endUnfinished(job.job_id, { status: "CANCELLED", error: { code: "cancelled", message: "cancelled by request" } }, new Date());
    expect(await store.finish(job.job_id, 2, { status: "SUCCEEDED", result }, new Date())).toBeUndefined();
  });

  it("endUnfinished: returns the ended job", async () => {
    const job = queuedJob();
    await store.create([job]);
    loseAnswerOfNext("UpdateItem");
    const ending = { status: "CANCELLED", error: { code: "cancelled", message: "cancelled by request" } } as const;
    expect(await store.endUnfinished(job.job_id, ending, new Date())).toMatchObject({ status: "CANCELLED", error: ending.error });
    expect(await store.endUnfinished(job.job_id, ending, new Date(Date.now() + 1))).toBeUndefined();
  });

  it("create: succeeds, and a true duplicate is still a conflict", async () => {
    const job = queuedJob();
    loseAnswerOfNext("PutItem");
    await store.create([job]);
    expect(exchanges.filter((e) => e.operation === "PutItem").map((e) => [e.fault, e.upstreamStatus])).toEqual([["after", 200], ["none", 400]]);
    await expect(store.create([{ ...job, created_at: new Date(Date.now() + 5).toISOString() }])).rejects.toThrow(ConflictError);
  });

  it("batch create: succeeds (a refused file would leave its batch record behind), and a true duplicate is still a conflict", async () => {
    const batches = new DynamoDbBatchStore({ client, tableName: batchesTable });
    const batch = { batch_id: `batch_lost_${uniqueSuffix()}`, tenant: "acme", created_at: new Date().toISOString(), total: 2, models: ["llama-2-7b"], expires_at: Math.floor(Date.now() / 1000) + 86_400 };
    loseAnswerOfNext("PutItem", batchesTable);
    await batches.create(batch);
    expect(exchanges.filter((e) => e.operation === "PutItem").map((e) => [e.fault, e.upstreamStatus])).toEqual([["after", 200], ["none", 400]]);
    expect(await batches.get(batch.batch_id)).toEqual(batch);
    await expect(batches.create({ ...batch, created_at: new Date(Date.now() + 5).toISOString() })).rejects.toThrow(ConflictError);
  });

  it("through the use cases: the job is enqueued, its result notified, and its quota slot given back once", async () => {
    const deps = memoryDeps();
    const jobs = new QuotaReleasingJobStore(store, deps.usage);
    // A real store: real time too, as FakeTime would run on while DynamoDB answers.
    const wired = { ...deps, jobs, clock: systemClock, sleep };

    loseAnswerOfNext("PutItem");
    const { job, created } = await submitJob(wired, "acme", { model: "llama-2-7b", prompt: "Lost and found.", max_tokens: 4 });
    expect(created).toBe(true);
    expect(deps.queue.sent.map((s) => s.message.job_id)).toEqual([job.job_id]);
    expect(await deps.usage.jobsInFlight("acme")).toBe(1);

    await subscribeToJob(wired, job.job_id, "c1");
    // The claim (the first UpdateItem) goes through; the finish, the next one, loses its answer.
    let updates = 0;
    watch = (e) => {
      if (e.operation === "UpdateItem" && e.table === table && ++updates === 1) loseAnswerOfNext("UpdateItem");
    };
    const report = await runBatcher(wired);
    expect(report.retry).toEqual([]);
    expect(exchanges.some((e) => e.fault === "after" && e.operation === "UpdateItem")).toBe(true);
    expect((await store.get(job.job_id))?.status).toBe("SUCCEEDED");
    expect(deps.notifier.eventsFor("c1").map((e) => e.type)).toEqual(["job.running", "job.succeeded"]);
    expect(await deps.usage.jobsInFlight("acme")).toBe(0);
  });
});

describe("a quota counter write whose answer was lost (the SDK sends it again)", () => {
  const lostUpdates = () => exchanges.filter((e) => e.fault === "after" && e.operation === "UpdateItem" && e.table === usageTable).length;
  const batchLine = (batchId: string, line: number, ended?: "SUCCEEDED") => ({ job_id: `${batchId}-${line}`, batch: { batch_id: batchId, line }, ended });

  it("a take and a give-back count once, at the limit too", async () => {
    const tenant = `tenant-${uniqueSuffix()}`;
    const [a, b] = [{ job_id: `job_${uniqueSuffix()}` }, { job_id: `job_${uniqueSuffix()}` }];

    loseAnswerOfNext("UpdateItem", usageTable);
    const takenA = await meter.takeJobs(tenant, [a], 2);
    loseAnswerOfNext("UpdateItem", usageTable);
    const takenB = await meter.takeJobs(tenant, [b], 2);
    const held = await meter.jobsInFlight(tenant);
    loseAnswerOfNext("UpdateItem", usageTable);
    await meter.giveBackJobs(tenant, [a]);

    expect(lostUpdates()).toBe(3);
    expect([takenA, takenB, held]).toEqual([true, true, 2]);
    expect(await meter.jobsInFlight(tenant)).toBe(1);
  });

  it("a batch line's give-back and the fold of its emptied chunk count once, and its status once", async () => {
    const tenant = `tenant-${uniqueSuffix()}`;
    const batchId = `batch_${uniqueSuffix()}`;
    await meter.takeJobs(tenant, [batchLine(batchId, 1), batchLine(batchId, 2)], 10);

    loseAnswerOfNext("UpdateItem", usageTable);
    await meter.giveBackJobs(tenant, [batchLine(batchId, 1, "SUCCEEDED")]);
    // The last line's give-back, then the fold of the chunk: each loses its answer
    let lose = 2;
    watch = (e) => {
      if (e.table === usageTable && e.operation === "UpdateItem" && e.fault === "none" && lose-- > 0) loseAnswerOfNext("UpdateItem", usageTable);
    };
    loseAnswerOfNext("UpdateItem", usageTable);
    await meter.giveBackJobs(tenant, [batchLine(batchId, 2, "SUCCEEDED")]);

    expect(lostUpdates()).toBeGreaterThanOrEqual(3);
    expect(await meter.jobsInFlight(tenant)).toBe(0);
    const batch = { batch_id: batchId, tenant, created_at: new Date().toISOString(), total: 2, models: ["llama-2-7b"], expires_at: 0 };
    expect(await meter.countsOf(batch)).toMatchObject({ total: 2, succeeded: 2, queued: 0, running: 0 });
  });

  it("a token charge and its refund count once", async () => {
    const tenant = `tenant-${uniqueSuffix()}`;
    const charge = { id: `job_${uniqueSuffix()}`, tokens: 60 };

    loseAnswerOfNext("UpdateItem", usageTable);
    const charged = await meter.chargeTokens(tenant, 29_000_000, charge, 100);
    const used = await meter.tokensCharged(tenant, 29_000_000);
    loseAnswerOfNext("UpdateItem", usageTable);
    await meter.refundTokens(tenant, 29_000_000, charge);

    expect(lostUpdates()).toBe(2);
    expect([charged, used]).toEqual([true, 60]);
    expect(await meter.tokensCharged(tenant, 29_000_000)).toBe(0);
  });
});

import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbJobStore } from "#shared/aws/dynamodb-job-store";
import { DynamoDbApiKeyStore } from "#shared/aws/dynamodb-api-keys";
import { DynamoDbBatchStore } from "#shared/aws/dynamodb-batches";
import { DynamoDbConnectionStore } from "#shared/aws/dynamodb-connections";
import { DynamoDbIdempotencyStore } from "#shared/aws/dynamodb-idempotency";
import { DynamoDbSubscriptionStore } from "#shared/aws/dynamodb-subscriptions";
import type { BatchRecord } from "#shared/core/batches";
import { loadConfig, type Config } from "#shared/config";
import { ConflictError, ValidationError } from "#shared/core/errors";
import type { JobRecord } from "#shared/core/jobs";
import type { Connection } from "#shared/ports";
import { createTablesFromInfra, localClientConfig, localDocumentClient, startDynalite, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";

const at = (iso: string) => new Date(iso);
const expiresAt = Date.parse("2026-12-27T12:00:00Z") / 1000;

/** A job with every optional part filled in, so a round trip shows nothing is lost. */
function fullJob(jobId: string, change: Partial<JobRecord> = {}): JobRecord {
  return {
    job_id: jobId,
    tenant: "acme",
    status: "QUEUED",
    model: "llama-2-7b",
    request: {
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Name three queues. Ünïcödé and emoji 🚀 survive." },
      ],
      max_tokens: 64,
      temperature: 0.7,
      top_p: 0.9,
      stop: ["\n\n", "END"],
      seed: 42,
    },
    prompt_tokens: 37,
    priority: 3,
    deadline: "2026-11-27T13:00:00.000Z",
    idempotency_key: `key-${jobId}`,
    metadata: { team: "search", run: "nightly" },
    attempt: 0,
    created_at: "2026-11-27T12:00:00.000Z",
    expires_at: expiresAt,
    ...change,
  };
}

const placement = (window: string) => ({ window_id: window, window_size: 7, component: "llama-2-7b-ic" });
const result = { text: "one two three", prompt_tokens: 37, completion_tokens: 3, finish_reason: "length" as const };

describe("DynamoDB adapters against dynalite, on the tables of infra/tables.yml", () => {
  const prefix = `it-${uniqueSuffix()}`;
  let server: LocalServer;
  let raw: DynamoDBClient;
  let client: DynamoDBDocumentClient;
  let config: Config;

  beforeAll(async () => {
    server = await startDynalite();
    raw = new DynamoDBClient(localClientConfig(server.endpoint));
    client = localDocumentClient(server.endpoint);
    config = loadConfig({ BATCHLINE_RESOURCE_PREFIX: prefix, BATCHLINE_WS_ENDPOINT: "http://127.0.0.1:1" });
    await createTablesFromInfra(raw, prefix);
  });
  afterAll(async () => {
    client.destroy();
    raw.destroy();
    await server.close();
  });

  const table = (name: string) => ({ client, tableName: name });

  it("creates every table the configuration names, from infra/tables.yml", async () => {
    // Act
    const out = await raw.send(new ListTablesCommand({}));

    // Assess
    expect(out.TableNames).toEqual(expect.arrayContaining(Object.values(config.tables)));
  });

  describe("DynamoDbJobStore", () => {
    const store = () => new DynamoDbJobStore(table(config.tables.jobs));
    const id = (name: string) => `job_${name}_${uniqueSuffix()}`;

    it("gives back a created job exactly as written, nested request and metadata included", async () => {
      // Prepare
      const job = fullJob(id("roundtrip"), { batch_id: `batch_${uniqueSuffix()}`, custom_id: "line-1", batch_line: 1, waiting_reason: "warming" });

      // Act
      await store().create([job]);
      const read = await store().get(job.job_id);

      // Assess
      expect(read).toEqual(job);
    });

    it("gives undefined for a job that does not exist", async () => {
      expect(await store().get(id("missing"))).toBeUndefined();
    });

    it("refuses to create a job whose id exists, and leaves the first one as it was", async () => {
      // Prepare
      const job = fullJob(id("dup"));
      await store().create([job]);

      // Act
      const again = store().create([{ ...job, tenant: "globex" }]);

      // Assess
      await expect(again).rejects.toBeInstanceOf(ConflictError);
      expect(await store().get(job.job_id)).toEqual(job);
    });

    it("claims a QUEUED job as attempt 1 with its placement, and a RUNNING one again as attempt 2", async () => {
      // Prepare
      const job = fullJob(id("claim"), { waiting_reason: "warming" });
      await store().create([job]);

      // Act
      const first = await store().claim(job.job_id, placement("win_a"), at("2026-11-27T12:00:01.000Z"));
      const second = await store().claim(job.job_id, placement("win_b"), at("2026-11-27T12:00:02.000Z"));

      // Assess
      expect(first).toEqual({
        ...job,
        status: "RUNNING",
        attempt: 1,
        started_at: "2026-11-27T12:00:01.000Z",
        window_id: "win_a",
        window_size: 7,
        component: "llama-2-7b-ic",
        waiting_reason: undefined,
      });
      expect(first).not.toHaveProperty("waiting_reason");
      expect(second).toMatchObject({ status: "RUNNING", attempt: 2, window_id: "win_b", started_at: "2026-11-27T12:00:02.000Z" });
      expect(await store().get(job.job_id)).toEqual(second);
    });

    it("fences finish: a stale attempt writes nothing, the latest attempt writes its result once", async () => {
      // Prepare
      const job = fullJob(id("fence"));
      await store().create([job]);
      await store().claim(job.job_id, placement("win_1"), at("2026-11-27T12:00:01.000Z"));
      const latest = await store().claim(job.job_id, placement("win_2"), at("2026-11-27T12:00:02.000Z"));

      // Act
      const stale = await store().finish(job.job_id, 1, { status: "SUCCEEDED", result: { ...result, text: "stale" } }, at("2026-11-27T12:00:03.000Z"));
      const afterStale = await store().get(job.job_id);
      const finished = await store().finish(job.job_id, 2, { status: "SUCCEEDED", result }, at("2026-11-27T12:00:04.000Z"));
      const twice = await store().finish(job.job_id, 2, { status: "SUCCEEDED", result: { ...result, text: "twice" } }, at("2026-11-27T12:00:05.000Z"));

      // Assess
      expect(stale).toBeUndefined();
      expect(afterStale).toEqual(latest);
      expect(finished).toEqual({ ...latest, status: "SUCCEEDED", result, finished_at: "2026-11-27T12:00:04.000Z" });
      expect(twice).toBeUndefined();
      expect(await store().get(job.job_id)).toEqual(finished);
    });

    it("puts a claimed job back to QUEUED to wait, saying why and giving its attempt back", async () => {
      // Prepare
      const job = fullJob(id("wait"));
      await store().create([job]);
      const claimed = await store().claim(job.job_id, placement("win_1"), at("2026-11-27T12:00:01.000Z"));

      // Act
      const waiting = await store().noteWaiting(job.job_id, "warming", 1);
      const next = await store().claim(job.job_id, placement("win_2"), at("2026-11-27T12:00:02.000Z"));

      // Assess
      expect(waiting).toEqual({ ...claimed, status: "QUEUED", waiting_reason: "warming", attempt: 0 });
      expect(next).toMatchObject({ status: "RUNNING", attempt: 1 });
      expect(next).not.toHaveProperty("waiting_reason");
    });

    it("leaves a job RUNNING when a later attempt holds it", async () => {
      // Prepare: the message came back and another batcher claimed the job again.
      const job = fullJob(id("waitstale"));
      await store().create([job]);
      await store().claim(job.job_id, placement("win_1"), at("2026-11-27T12:00:01.000Z"));
      await store().claim(job.job_id, placement("win_2"), at("2026-11-27T12:00:02.000Z"));

      // Act
      const stale = await store().noteWaiting(job.job_id, "warming", 1);

      // Assess
      expect(stale).toBeUndefined();
      expect(await store().get(job.job_id)).toMatchObject({ status: "RUNNING", attempt: 2, window_id: "win_2" });
    });

    it("records a FAILED outcome of the current attempt with its error", async () => {
      // Prepare
      const job = fullJob(id("failed-outcome"));
      await store().create([job]);
      await store().claim(job.job_id, placement("win_1"), at("2026-11-27T12:00:01.000Z"));
      const error = { code: "model_error", message: "model rejected the request" };

      // Act
      const finished = await store().finish(job.job_id, 1, { status: "FAILED", error }, at("2026-11-27T12:00:02.000Z"));

      // Assess
      expect(finished).toMatchObject({ status: "FAILED", error, attempt: 1, finished_at: "2026-11-27T12:00:02.000Z" });
      expect(finished).not.toHaveProperty("result");
    });

    it("does not claim a finished job nor one that does not exist", async () => {
      // Prepare
      const job = fullJob(id("claim-finished"));
      await store().create([job]);
      await store().claim(job.job_id, placement("win_1"), at("2026-11-27T12:00:01.000Z"));
      const finished = await store().finish(job.job_id, 1, { status: "SUCCEEDED", result }, at("2026-11-27T12:00:02.000Z"));

      // Act
      const again = await store().claim(job.job_id, placement("win_2"), at("2026-11-27T12:00:03.000Z"));
      const missing = await store().claim(id("never-created"), placement("win_3"), at("2026-11-27T12:00:03.000Z"));

      // Assess
      expect(again).toBeUndefined();
      expect(missing).toBeUndefined();
      expect(await store().get(job.job_id)).toEqual(finished);
    });

    it("fails an unfinished job whatever its attempt, and leaves a finished one alone", async () => {
      // Prepare
      const queued = fullJob(id("dlq-queued"));
      const running = fullJob(id("dlq-running"));
      const done = fullJob(id("dlq-done"));
      await store().create([queued]);
      await store().create([running]);
      await store().create([done]);
      await store().claim(running.job_id, placement("win_1"), at("2026-11-27T12:00:01.000Z"));
      await store().claim(done.job_id, placement("win_1"), at("2026-11-27T12:00:01.000Z"));
      const finished = await store().finish(done.job_id, 1, { status: "SUCCEEDED", result }, at("2026-11-27T12:00:02.000Z"));
      const error = { code: "dead_letter", message: "delivered 5 times" };

      // Act
      const failedQueued = await store().endUnfinished(queued.job_id, { status: "FAILED", error }, at("2026-11-27T12:00:03.000Z"));
      const failedRunning = await store().endUnfinished(running.job_id, { status: "FAILED", error }, at("2026-11-27T12:00:03.000Z"));
      const failedDone = await store().endUnfinished(done.job_id, { status: "FAILED", error }, at("2026-11-27T12:00:03.000Z"));

      // Assess
      expect(failedQueued).toEqual({ ...queued, status: "FAILED", error, finished_at: "2026-11-27T12:00:03.000Z" });
      expect(failedRunning).toMatchObject({ status: "FAILED", error, attempt: 1 });
      expect(failedDone).toBeUndefined();
      expect(await store().get(done.job_id)).toEqual(finished);
    });

    it("creates a batch of 60 jobs and lists them 25 at a time in batch_line order until the cursor runs out", async () => {
      // Prepare
      const batchId = `batch_${uniqueSuffix()}`;
      const lines = Array.from({ length: 60 }, (_, i) => i + 1);
      // Written out of order, so the order read back comes from the index, not from the writes.
      const jobs = lines.toReversed().map((line) => fullJob(id(`line${line}`), { batch_id: batchId, batch_line: line, custom_id: `c-${line}` }));
      const otherBatch = fullJob(id("other"), { batch_id: `batch_${uniqueSuffix()}`, batch_line: 1 });
      await store().create([otherBatch]);

      // Act
      await store().create(jobs);
      const pages: JobRecord[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store().listByBatch(batchId, { limit: 25, cursor });
        pages.push([...page.items]);
        cursor = page.cursor;
      } while (cursor !== undefined && pages.length < 10);

      // Assess
      expect(pages.map((p) => p.length)).toEqual([25, 25, 10]);
      expect(pages.flat().map((j) => j.batch_line)).toEqual(lines);
      expect(pages.flat()).toEqual(expect.arrayContaining(jobs));
    });

    it("gives an empty page for a batch with no jobs", async () => {
      expect(await store().listByBatch(`batch_${uniqueSuffix()}`, { limit: 25 })).toEqual({ items: [], cursor: undefined });
    });

    it("rejects a cursor it did not hand out as a ValidationError on the cursor", async () => {
      // Prepare
      const batchId = `batch_${uniqueSuffix()}`;
      const notBase64Json = "not a cursor";
      const wrongKey = Buffer.from(JSON.stringify({ nope: 1 })).toString("base64url");

      // Act
      const garbage = store().listByBatch(batchId, { limit: 25, cursor: notBase64Json });
      const foreign = store().listByBatch(batchId, { limit: 25, cursor: wrongKey });

      // Assess
      await expect(garbage).rejects.toThrow(expect.objectContaining({ name: "ValidationError", field: "cursor" }));
      await expect(garbage).rejects.toBeInstanceOf(ValidationError);
      await expect(foreign).rejects.toThrow(expect.objectContaining({ name: "ValidationError", field: "cursor" }));
      await expect(foreign).rejects.toBeInstanceOf(ValidationError);
    });

    it("rejects the cursor of another batch as a ValidationError on the cursor", async () => {
      // Prepare
      const [batchA, batchB] = [`batch_a_${uniqueSuffix()}`, `batch_b_${uniqueSuffix()}`];
      await store().create([1, 2, 3].map((line) => fullJob(id(`a${line}`), { batch_id: batchA, batch_line: line })));
      await store().create([1, 2, 3].map((line) => fullJob(id(`b${line}`), { batch_id: batchB, batch_line: line })));
      const { cursor } = await store().listByBatch(batchA, { limit: 2 });

      // Act
      const crossed = store().listByBatch(batchB, { limit: 2, cursor });

      // Assess
      expect(cursor).toBeDefined();
      await expect(crossed).rejects.toBeInstanceOf(ValidationError);
    });
  });

  describe("DynamoDbIdempotencyStore", () => {
    const store = () => new DynamoDbIdempotencyStore(table(config.tables.idempotencyKeys));

    it("binds a key to the first job id and gives that id back to later binds", async () => {
      // Prepare
      const key = `key-${uniqueSuffix()}`;

      // Act
      const first = await store().bind("acme", key, "job_first", expiresAt);
      const second = await store().bind("acme", key, "job_second", expiresAt);

      // Assess
      expect(first).toBe("job_first");
      expect(second).toBe("job_first");
    });

    it("keeps the same key of two tenants apart", async () => {
      // Prepare
      const key = `key-${uniqueSuffix()}`;

      // Act
      const acme = await store().bind("acme", key, "job_acme", expiresAt);
      const globex = await store().bind("globex", key, "job_globex", expiresAt);

      // Assess
      expect(acme).toBe("job_acme");
      expect(globex).toBe("job_globex");
    });

    it("binds one job among many concurrent binds of one key", async () => {
      // Prepare
      const key = `key-${uniqueSuffix()}`;

      // Act
      const bound = await Promise.all(Array.from({ length: 8 }, (_, i) => store().bind("acme", key, `job_${i}`, expiresAt)));

      // Assess
      expect(new Set(bound).size).toBe(1);
    });
  });

  describe("DynamoDbBatchStore", () => {
    const store = () => new DynamoDbBatchStore(table(config.tables.batches));
    const batch = (tenant: string, n: number): BatchRecord => ({
      batch_id: `batch_${n}_${uniqueSuffix()}`,
      tenant,
      created_at: new Date(Date.parse("2026-11-27T12:00:00Z") + n * 1000).toISOString(),
      total: n,
      models: ["llama-2-7b"],
      metadata: { n: String(n) },
      expires_at: expiresAt,
    });

    it("gives back a created batch, and undefined for an unknown one", async () => {
      // Prepare
      const created = batch(`tenant-${uniqueSuffix()}`, 1);

      // Act
      await store().create(created);

      // Assess
      expect(await store().get(created.batch_id)).toEqual(created);
      expect(await store().get(`batch_${uniqueSuffix()}`)).toBeUndefined();
    });

    it("refuses to create a batch whose id exists", async () => {
      // Prepare
      const created = batch(`tenant-${uniqueSuffix()}`, 1);
      await store().create(created);

      // Act
      const again = store().create({ ...created, total: 99 });

      // Assess
      await expect(again).rejects.toBeInstanceOf(ConflictError);
      expect(await store().get(created.batch_id)).toEqual(created);
    });

    it("lists a tenant's batches newest first, page by page, and only that tenant's", async () => {
      // Prepare
      const tenant = `tenant-${uniqueSuffix()}`;
      const mine = [3, 1, 5, 2, 4].map((n) => batch(tenant, n));
      for (const b of [...mine, batch(`tenant-${uniqueSuffix()}`, 6)]) await store().create(b);

      // Act
      const first = await store().listByTenant(tenant, { limit: 2 });
      const second = await store().listByTenant(tenant, { limit: 2, cursor: first.cursor });
      const third = await store().listByTenant(tenant, { limit: 2, cursor: second.cursor });

      // Assess
      const totals = (page: { items: readonly BatchRecord[] }) => page.items.map((b) => b.total);
      expect([totals(first), totals(second), totals(third)]).toEqual([[5, 4], [3, 2], [1]]);
      expect(third.cursor).toBeUndefined();
    });

    it("rejects a cursor it did not hand out as a ValidationError on the cursor", async () => {
      // Prepare
      const foreign = Buffer.from(JSON.stringify({ job_id: "job_1" })).toString("base64url");

      // Act
      const listed = store().listByTenant(`tenant-${uniqueSuffix()}`, { limit: 2, cursor: foreign });

      // Assess
      await expect(listed).rejects.toBeInstanceOf(ValidationError);
      await expect(listed).rejects.toMatchObject({ field: "cursor" });
    });
  });

  describe("DynamoDbApiKeyStore", () => {
    it("gives the tenant and role of a stored key hash, and undefined for an unknown hash", async () => {
      // Prepare
      const store = new DynamoDbApiKeyStore(table(config.tables.apiKeys));
      const [memberHash, adminHash] = [`sha256-${uniqueSuffix()}`, `sha256-${uniqueSuffix()}`];
      await client.send(new PutCommand({ TableName: config.tables.apiKeys, Item: { key_hash: memberHash, tenant: "acme", created_at: "2026-11-27T12:00:00.000Z" } }));
      await client.send(new PutCommand({ TableName: config.tables.apiKeys, Item: { key_hash: adminHash, tenant: "ops", role: "admin", created_at: "2026-11-27T12:00:00.000Z" } }));

      // Act
      const member = await store.principalOf(memberHash);
      const admin = await store.principalOf(adminHash);
      const unknown = await store.principalOf(`sha256-${uniqueSuffix()}`);

      // Assess
      expect(member).toEqual({ tenant: "acme", role: "member" });
      expect(admin).toEqual({ tenant: "ops", role: "admin" });
      expect(unknown).toBeUndefined();
    });
  });

  describe("DynamoDbConnectionStore", () => {
    it("stores, reads and deletes a connection", async () => {
      // Prepare
      const store = new DynamoDbConnectionStore(table(config.tables.connections));
      const connection: Connection = { connection_id: `Ab${uniqueSuffix()}=`, tenant: "acme", connected_at: "2026-11-27T12:00:00.000Z", expires_at: expiresAt };

      // Act
      await store.put(connection);
      const stored = await store.get(connection.connection_id);
      await store.delete(connection.connection_id);
      const deleted = await store.get(connection.connection_id);

      // Assess
      expect(stored).toEqual(connection);
      expect(deleted).toBeUndefined();
    });

    it("deletes an unknown connection without complaint", async () => {
      const store = new DynamoDbConnectionStore(table(config.tables.connections));
      await expect(store.delete(`gone-${uniqueSuffix()}`)).resolves.toBeUndefined();
    });
  });

  describe("DynamoDbSubscriptionStore", () => {
    const connectionOf = (id: string) => ({ connection_id: id, tenant: "acme", connected_at: "2026-11-27T12:00:00.000Z", expires_at: expiresAt });
    const store = () => new DynamoDbSubscriptionStore(table(config.tables.subscriptions));

    it("lists every connection subscribed to a topic, and none for a topic nobody follows", async () => {
      // Prepare
      const topic = `job#job_${uniqueSuffix()}`;
      const [a, b] = [`conn-a-${uniqueSuffix()}`, `conn-b-${uniqueSuffix()}`];

      // Act
      await store().subscribe(topic, connectionOf(a));
      await store().subscribe(topic, connectionOf(b));
      await store().subscribe(topic, connectionOf(a));

      // Assess
      expect([...(await store().subscribers(topic))].sort()).toEqual([a, b].sort());
      expect(await store().subscribers(`job#job_${uniqueSuffix()}`)).toEqual([]);
    });

    it("removes a connection from all its topics and leaves other connections subscribed", async () => {
      // Prepare
      const [jobTopic, batchTopic, otherTopic] = [`job#job_${uniqueSuffix()}`, `batch#batch_${uniqueSuffix()}`, `job#job_${uniqueSuffix()}`];
      const [leaving, staying] = [`conn-leaving-${uniqueSuffix()}`, `conn-staying-${uniqueSuffix()}`];
      for (const topic of [jobTopic, batchTopic]) {
        await store().subscribe(topic, connectionOf(leaving));
        await store().subscribe(topic, connectionOf(staying));
      }
      await store().subscribe(otherTopic, connectionOf(staying));

      // Act
      await store().removeConnection(leaving);

      // Assess
      expect(await store().subscribers(jobTopic)).toEqual([staying]);
      expect(await store().subscribers(batchTopic)).toEqual([staying]);
      expect(await store().subscribers(otherTopic)).toEqual([staying]);
      const row = await client.send(new GetCommand({ TableName: config.tables.subscriptions, Key: { topic: jobTopic, connection_id: staying } }));
      expect(row.Item).toEqual({ topic: jobTopic, connection_id: staying, tenant: "acme", expires_at: expiresAt });
    });

    it("removes a connection with more topics than one BatchWrite takes", async () => {
      // Prepare
      const connection = `conn-busy-${uniqueSuffix()}`;
      const topics = Array.from({ length: 30 }, (_, i) => `job#job_${i}_${uniqueSuffix()}`);
      await Promise.all(topics.map((t) => store().subscribe(t, connectionOf(connection))));

      // Act
      await store().removeConnection(connection);

      // Assess
      const left = await Promise.all(topics.map((t) => store().subscribers(t)));
      expect(left.flat()).toEqual([]);
    });
  });
});

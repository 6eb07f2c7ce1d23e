import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbApiKeyStore } from "#shared/aws/dynamodb-api-keys";
import { DynamoDbBatchStore } from "#shared/aws/dynamodb-batches";
import { DynamoDbCapacityLedger } from "#shared/aws/dynamodb-capacity-ledger";
import { DynamoDbJobStore } from "#shared/aws/dynamodb-job-store";
import { DynamoDbRouteSettingsStore } from "#shared/aws/dynamodb-route-settings";
import { DynamoDbSubscriptionStore } from "#shared/aws/dynamodb-subscriptions";
import { MalformedItemError } from "#shared/aws/dynamodb-table";
import { DynamoDbTenantStore } from "#shared/aws/dynamodb-tenants";
import { DynamoDbTicketStore } from "#shared/aws/dynamodb-tickets";
import { DynamoDbUsageMeter } from "#shared/aws/dynamodb-usage";
import { loadConfig, type Config } from "#shared/config";
import { BatchlineError } from "#shared/core/errors";
import { fullJob } from "../contract/job-store.ts";
import { createTablesFromInfra, localClientConfig, localDocumentClient, startDynalite, uniqueSuffix, type LocalServer } from "../helpers/local-aws.ts";

// What the port contracts (test/contract) cannot see: the tables themselves, the items as stored
// (the TTL attributes DynamoDB deletes by), and what the adapters make of items they did not write.
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
  const putItem = (tableName: string, item: Record<string, unknown>) => client.send(new PutCommand({ TableName: tableName, Item: item }));
  const getItem = async (tableName: string, key: Record<string, unknown>) => (await client.send(new GetCommand({ TableName: tableName, Key: key }))).Item;

  /** The error a read gives, for looking at it whole. */
  const failureOf = (read: Promise<unknown>): Promise<unknown> => read.then(() => undefined, (error: unknown) => error);

  it("creates every table the configuration names, from infra/tables.yml", async () => {
    // Act
    const out = await raw.send(new ListTablesCommand({}));

    // Assess
    expect(out.TableNames).toEqual(expect.arrayContaining(Object.values(config.tables)));
  });

  describe("items as stored", () => {
    it("stores a subscription with its connection's tenant and expiry, for the TTL", async () => {
      // Prepare
      const store = new DynamoDbSubscriptionStore(table(config.tables.subscriptions));
      const [topic, connectionId] = [`job#job_${uniqueSuffix()}`, `conn-${uniqueSuffix()}`];

      // Act
      await store.subscribe(topic, { connection_id: connectionId, tenant: "acme", connected_at: "2026-11-27T12:00:00.000Z", expires_at: 1_900_000_000 });

      // Assess
      expect(await getItem(config.tables.subscriptions, { topic, connection_id: connectionId })).toEqual({ topic, connection_id: connectionId, tenant: "acme", expires_at: 1_900_000_000 });
    });

    it("stores a ticket's expiry in whole epoch seconds, rounded up", async () => {
      // Prepare
      const store = new DynamoDbTicketStore(table(config.tables.wsTickets));
      const hash = `ticket-${uniqueSuffix()}`;

      // Act
      await store.put(hash, { tenant: "acme", role: "member" }, new Date("2026-11-27T12:01:00.200Z"));

      // Assess
      expect(await getItem(config.tables.wsTickets, { ticket_hash: hash })).toEqual({
        ticket_hash: hash, tenant: "acme", role: "member", expires_at: Date.parse("2026-11-27T12:01:01Z") / 1000,
      });
    });

    it("stores a capacity entry with its expiry in whole epoch seconds, and its oldest wait only when a job waits", async () => {
      // Prepare
      const ledger = new DynamoDbCapacityLedger(table(config.tables.capacity));
      const component = `component-${uniqueSuffix()}`;

      // Act
      await ledger.publish(component, "waiting", { load: { sequences: 2, tokens: 200 }, oldestWaitingMs: 1_700_000_000_000 }, new Date("2026-11-27T12:01:00.500Z"));
      await ledger.publish(component, "busy", { load: { sequences: 1, tokens: 100 } }, new Date("2026-11-27T12:01:00.000Z"));

      // Assess
      expect(await getItem(config.tables.capacity, { component, holder: "waiting" })).toEqual({
        component, holder: "waiting", sequences: 2, tokens: 200, oldest_waiting_ms: 1_700_000_000_000, expires_at: Date.parse("2026-11-27T12:01:01Z") / 1000,
      });
      expect(await getItem(config.tables.capacity, { component, holder: "busy" })).not.toHaveProperty("oldest_waiting_ms");
    });

    it("stores a cancel mark under a sort key no holder id takes, with its expiry in whole epoch seconds, and refuses a malformed one", async () => {
      // Prepare
      const ledger = new DynamoDbCapacityLedger(table(config.tables.capacity));
      const [component, broken] = [`component-${uniqueSuffix()}`, `component-${uniqueSuffix()}`];
      await putItem(config.tables.capacity, { component: broken, holder: "cancel#job_x", expires_at: 4_000_000_000 });

      // Act
      await ledger.markCancelled(component, "job_1", new Date("2026-11-27T12:02:00.200Z"));
      const failure = await failureOf(ledger.others(broken, "me", new Date()));

      // Assess
      expect(await getItem(config.tables.capacity, { component, holder: "cancel#job_1" })).toEqual({
        component, holder: "cancel#job_1", job_id: "job_1", expires_at: Date.parse("2026-11-27T12:02:01Z") / 1000,
      });
      expect(failure).toBeInstanceOf(MalformedItemError);
      expect(String((failure as Error).message)).toMatch(new RegExp(`^table ${config.tables.capacity}: cancel mark cancel#job_x of ${broken} is malformed: job_id: `));
    });

    it("counts a tenant's tokens of a minute (with the charges in it) on an item that expires two minutes after that minute starts, and its jobs (with what holds them) on one that never does", async () => {
      // Prepare
      const meter = new DynamoDbUsageMeter(table(config.tables.usage));
      const tenant = `tenant-${uniqueSuffix()}`;
      const minute = 29_000_000;

      // Act
      await meter.chargeTokens(tenant, minute, { id: "job_1", tokens: 120 }, 1_000);
      await meter.takeJobs(tenant, [{ job_id: "job_1" }, { job_id: "job_2", batch: { batch_id: "batch_1", line: 1 } }, { job_id: "job_3", batch: { batch_id: "batch_1", line: 2 } }], 10);

      // Assess
      expect(await getItem(config.tables.usage, { key: `tokens#${tenant}#${minute}` })).toEqual({ key: `tokens#${tenant}#${minute}`, used: 120, charges: new Set(["job_1"]), expires_at: (minute + 2) * 60 });
      expect(await getItem(config.tables.usage, { key: `jobs#${tenant}` })).toEqual({ key: `jobs#${tenant}`, used: 3, open: new Set(["job_1", "batch_1#0"]) });
      expect(await getItem(config.tables.usage, { key: `slots#${tenant}#batch_1#0` })).toMatchObject({ held: new Set([1, 2]), slots: 2 });
    });
  });

  describe("items they did not write", () => {
    it("reads a job claimed before the GPU batch had its name (window_id, window_size) under the new names", async () => {
      // Prepare
      const store = new DynamoDbJobStore(table(config.tables.jobs));
      const job = fullJob(`job_legacy_${uniqueSuffix()}`);
      await putItem(config.tables.jobs, { ...job, status: "RUNNING", attempt: 1, window_id: "win_old", window_size: 12, component: "llama-2-7b-ic" });

      // Act
      const read = await store.get(job.job_id);

      // Assess
      expect(read).toMatchObject({ gpu_batch_id: "win_old", gpu_batch_size: 12 });
      expect(read).not.toHaveProperty("window_id");
    });

    it("refuses a malformed job with a MalformedItemError naming the table, the job and each problem", async () => {
      // Prepare
      const store = new DynamoDbJobStore(table(config.tables.jobs));
      const job = fullJob(`job_malformed_${uniqueSuffix()}`);
      await putItem(config.tables.jobs, { ...job, status: "DONE", attempt: "1" });

      // Act
      const error = await failureOf(store.get(job.job_id));

      // Assess
      expect(error).toBeInstanceOf(MalformedItemError);
      expect(error).toBeInstanceOf(BatchlineError);
      expect(error).toMatchObject({ code: "internal", retryable: false, tableName: config.tables.jobs });
      const message = (error as Error).message;
      expect(message).toContain(`table ${config.tables.jobs}: job ${job.job_id} is malformed`);
      expect(message).toMatch(/status: .*QUEUED/);
      expect(message).toMatch(/attempt: .*number/);
    });

    it("refuses a malformed job met in a claim's answer and in a page of a batch", async () => {
      // Prepare
      const store = new DynamoDbJobStore(table(config.tables.jobs));
      const batchId = `batch_${uniqueSuffix()}`;
      const job = fullJob(`job_no_request_${uniqueSuffix()}`, { batch_id: batchId, batch_line: 1 });
      const { request: _, ...withoutRequest } = job;
      await putItem(config.tables.jobs, withoutRequest);

      // Act
      const claimed = await failureOf(store.claim(job.job_id, { gpu_batch_id: "win_1", gpu_batch_size: 1, component: "llama-2-7b-ic" }, new Date()));
      const listed = await failureOf(store.listByBatch(batchId, { limit: 10 }));

      // Assess
      for (const error of [claimed, listed]) {
        expect(error).toBeInstanceOf(MalformedItemError);
        expect((error as Error).message).toMatch(/request: /);
      }
    });

    it("refuses a malformed batch, tenant quota, API key and capacity entry, naming each table", async () => {
      // Prepare
      const id = uniqueSuffix();
      await putItem(config.tables.batches, { batch_id: `batch_${id}`, tenant: "acme", created_at: "2026-11-27T12:00:00.000Z", total: "3", models: "llama-2-7b", expires_at: 1 });
      await putItem(config.tables.tenants, { tenant: `tenant-${id}`, max_jobs_in_flight: 10 });
      await putItem(config.tables.apiKeys, { key_hash: `sha256-${id}`, tenant: "acme", role: "root", name: "k", created_at: "2026-11-27T12:00:00.000Z" });
      await putItem(config.tables.capacity, { component: `component-${id}`, holder: "b", sequences: 1, expires_at: 4_000_000_000 });

      // Act
      const errors = await Promise.all([
        failureOf(new DynamoDbBatchStore(table(config.tables.batches)).get(`batch_${id}`)),
        failureOf(new DynamoDbTenantStore(table(config.tables.tenants)).quotaOf(`tenant-${id}`)),
        failureOf(new DynamoDbApiKeyStore(table(config.tables.apiKeys)).principalOf(`sha256-${id}`)),
        failureOf(new DynamoDbCapacityLedger(table(config.tables.capacity)).others(`component-${id}`, "me", new Date())),
      ]);

      // Assess
      const [batch, quota, apiKey, capacity] = errors.map((e) => (e instanceof MalformedItemError ? e.message : String(e)));
      expect(batch).toMatch(new RegExp(`^table ${config.tables.batches}: batch batch_${id} is malformed: total: .*; models: `));
      expect(quota).toMatch(new RegExp(`^table ${config.tables.tenants}: quota of tenant tenant-${id} is malformed: tokens_per_minute: `));
      expect(apiKey).toMatch(new RegExp(`^table ${config.tables.apiKeys}: API key sha256-${id} is malformed: role: `));
      expect(capacity).toMatch(new RegExp(`^table ${config.tables.capacity}: capacity entry of component-${id} held by b is malformed: tokens: `));
    });

    it("reads route settings stored before a knob existed without it, and refuses a knob stored with a wrong value", async () => {
      // Prepare
      const store = new DynamoDbRouteSettingsStore(table(config.tables.routeSettings));
      const [older, broken] = [`route-older-${uniqueSuffix()}`, `route-broken-${uniqueSuffix()}`];
      const beforeWarmingKnob = { dispatch: "adaptive", top_up: true, max_in_flight_per_copy: 64, max_wait_ms: 500, latency_objective_ms: 30_000, retired_knob: 1 };
      await putItem(config.tables.routeSettings, { route: older, settings: beforeWarmingKnob, updated_at: "2026-11-27T12:00:00.000Z" });
      await putItem(config.tables.routeSettings, { route: broken, settings: { ...beforeWarmingKnob, dispatch: "eager" }, updated_at: "2026-11-27T12:00:00.000Z" });

      // Act
      const read = await store.get(older);
      const error = await failureOf(store.get(broken));

      // Assess
      const { retired_knob: _, ...knobs } = beforeWarmingKnob;
      expect(read).toEqual(knobs);
      expect(error).toBeInstanceOf(MalformedItemError);
      expect((error as Error).message).toMatch(new RegExp(`^table ${config.tables.routeSettings}: settings of route ${broken} is malformed: settings.dispatch: `));
    });
  });
});

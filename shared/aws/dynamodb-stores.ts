import { isDeepStrictEqual } from "node:util";
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { ApiKeyRecord, Principal } from "../core/api-keys.ts";
import type { BatchRecord } from "../core/batches.ts";
import { ConflictError } from "../core/errors.ts";
import type { TenantQuota } from "../core/quotas.ts";
import type { RouteSettings } from "../core/route-settings.ts";
import { addLoad, noLoad, type Load } from "../core/window-policy.ts";
import type {
  ApiKeyStore, BatchStore, CapacityLedger, Connection, LedgerEntry, ConnectionStore, IdempotencyStore, Page, PageRequest, RouteSettingsStore, SubscriptionStore, TenantStore, TicketStore, UsageMeter,
} from "../ports.ts";
import { decodeCursor, encodeCursor, rejectForeignCursor } from "./cursor.ts";
import { batchWrite, conditional, sdk } from "./dynamodb-job-store.ts";

type TableOptions = { client: DynamoDBDocumentClient; tableName: string };

/** One DynamoDB table behind a port: the client and table name every adapter needs. */
abstract class DynamoDbTable {
  protected readonly client: DynamoDBDocumentClient;
  protected readonly tableName: string;
  constructor(options: TableOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
  }
}

export class DynamoDbIdempotencyStore extends DynamoDbTable implements IdempotencyStore {
  async bind(tenant: string, key: string, jobId: string, expiresAt: number): Promise<string> {
    const id = `${tenant}#${key}`;
    const put = await conditional(`bind idempotency key`, () =>
      this.client.send(new PutCommand({
        TableName: this.tableName,
        Item: { key: id, tenant, job_id: jobId, expires_at: expiresAt },
        ConditionExpression: "attribute_not_exists(#key)",
        ExpressionAttributeNames: { "#key": "key" },
      })),
    );
    if (put !== undefined) return jobId;
    const out = await sdk("read idempotency key", () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { key: id }, ConsistentRead: true })),
    );
    const bound = out.Item?.job_id;
    if (typeof bound !== "string") throw new ConflictError(`idempotency key ${key} is being bound; try again`);
    return bound;
  }

  async unbind(tenant: string, key: string, jobId: string): Promise<void> {
    await conditional("unbind idempotency key", () =>
      this.client.send(new DeleteCommand({
        TableName: this.tableName,
        Key: { key: `${tenant}#${key}` },
        ConditionExpression: "job_id = :job",
        ExpressionAttributeValues: { ":job": jobId },
      })),
    );
  }
}

export class DynamoDbTenantStore extends DynamoDbTable implements TenantStore {
  async quotaOf(tenant: string): Promise<TenantQuota | undefined> {
    const out = await sdk(`get quota of ${tenant}`, () => this.client.send(new GetCommand({ TableName: this.tableName, Key: { tenant } })));
    const item = out.Item;
    return item ? { max_jobs_in_flight: Number(item.max_jobs_in_flight), tokens_per_minute: Number(item.tokens_per_minute) } : undefined;
  }

  async setQuota(tenant: string, quota: TenantQuota): Promise<void> {
    await sdk(`set quota of ${tenant}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: { tenant, ...quota } })));
  }
}

/** Counters in one table: `jobs#<tenant>` (jobs held) and `tokens#<tenant>#<minute>` (expire after two minutes). */
export class DynamoDbUsageMeter extends DynamoDbTable implements UsageMeter {
  takeJobs(tenant: string, count: number, limit: number): Promise<boolean> {
    return this.#charge(`jobs#${tenant}`, count, limit, undefined);
  }

  async giveBackJobs(tenant: string, count: number): Promise<void> {
    await this.#add(`jobs#${tenant}`, -count);
  }

  chargeTokens(tenant: string, minute: number, tokens: number, limit: number): Promise<boolean> {
    return this.#charge(`tokens#${tenant}#${minute}`, tokens, limit, (minute + 2) * 60);
  }

  async refundTokens(tenant: string, minute: number, tokens: number): Promise<void> {
    await this.#add(`tokens#${tenant}#${minute}`, -tokens);
  }

  async #charge(key: string, amount: number, limit: number, expiresAt: number | undefined): Promise<boolean> {
    if (amount > limit) return false;
    const out = await conditional(`charge ${key}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { key },
          UpdateExpression: expiresAt === undefined ? "ADD used :n" : "ADD used :n SET expires_at = :exp",
          ConditionExpression: "attribute_not_exists(used) OR used <= :room",
          ExpressionAttributeValues: { ":n": amount, ":room": limit - amount, ...(expiresAt === undefined ? {} : { ":exp": expiresAt }) },
        }),
      ),
    );
    return out !== undefined;
  }

  async #add(key: string, amount: number): Promise<void> {
    await sdk(`adjust ${key}`, () =>
      this.client.send(new UpdateCommand({ TableName: this.tableName, Key: { key }, UpdateExpression: "ADD used :n", ExpressionAttributeValues: { ":n": amount } })),
    );
  }
}

export class DynamoDbBatchStore extends DynamoDbTable implements BatchStore {
  async create(batch: BatchRecord): Promise<void> {
    const put = await conditional(`create batch ${batch.batch_id}`, () =>
      this.client.send(new PutCommand({ TableName: this.tableName, Item: batch, ConditionExpression: "attribute_not_exists(batch_id)" })),
    );
    if (put !== undefined) return;
    // A written batch whose answer was lost fails the SDK's retry on its own condition: that is
    // success, not a conflict (which would refuse the file while its batch record stays).
    const stored = await this.get(batch.batch_id);
    // As written: the document client drops undefined attributes.
    if (!isDeepStrictEqual(stored, JSON.parse(JSON.stringify(batch)))) throw new ConflictError(`batch ${batch.batch_id} already exists`);
  }

  async get(batchId: string): Promise<BatchRecord | undefined> {
    const out = await sdk(`get batch ${batchId}`, () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { batch_id: batchId }, ConsistentRead: true })),
    );
    return out.Item as BatchRecord | undefined;
  }

  async listByTenant(tenant: string, page: PageRequest): Promise<Page<BatchRecord>> {
    const out = await sdk("list batches", () =>
      this.client.send(new QueryCommand({
        TableName: this.tableName,
        IndexName: "tenant-index",
        KeyConditionExpression: "tenant = :tenant",
        ExpressionAttributeValues: { ":tenant": tenant },
        ScanIndexForward: false,
        Limit: page.limit,
        ExclusiveStartKey: decodeCursor(page.cursor),
      })).catch(rejectForeignCursor(page.cursor)),
    );
    return { items: (out.Items ?? []) as BatchRecord[], cursor: encodeCursor(out.LastEvaluatedKey) };
  }
}

export class DynamoDbApiKeyStore extends DynamoDbTable implements ApiKeyStore {
  async principalOf(keyHash: string): Promise<Principal | undefined> {
    const out = await sdk("look up API key", () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { key_hash: keyHash } })),
    );
    const tenant = out.Item?.tenant;
    if (typeof tenant !== "string") return undefined;
    return { tenant, role: out.Item?.role === "admin" ? "admin" : "member" };
  }

  async listByTenant(tenant: string): Promise<readonly ApiKeyRecord[]> {
    const out = await sdk("list API keys", () =>
      this.client.send(new QueryCommand({ TableName: this.tableName, IndexName: "tenant-index", KeyConditionExpression: "tenant = :t", ExpressionAttributeValues: { ":t": tenant } })),
    );
    return (out.Items ?? []) as ApiKeyRecord[];
  }

  async put(record: ApiKeyRecord): Promise<void> {
    await sdk("store API key", () => this.client.send(new PutCommand({ TableName: this.tableName, Item: record })));
  }

  async delete(keyHash: string): Promise<void> {
    await sdk("delete API key", () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { key_hash: keyHash } })));
  }
}

export class DynamoDbTicketStore extends DynamoDbTable implements TicketStore {
  async put(ticketHash: string, principal: Principal, expiresAt: Date): Promise<void> {
    const item = { ticket_hash: ticketHash, tenant: principal.tenant, role: principal.role, expires_at: Math.ceil(expiresAt.getTime() / 1000) };
    await sdk("store WebSocket ticket", () => this.client.send(new PutCommand({ TableName: this.tableName, Item: item })));
  }

  async take(ticketHash: string, now: Date): Promise<Principal | undefined> {
    // Deleting and reading in one call is what makes a ticket work once, even under a race.
    const out = await sdk("take WebSocket ticket", () =>
      this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { ticket_hash: ticketHash }, ReturnValues: "ALL_OLD" })),
    );
    const item = out.Attributes;
    if (!item || Number(item.expires_at) * 1000 <= now.getTime() || typeof item.tenant !== "string") return undefined;
    return { tenant: item.tenant, role: item.role === "admin" ? "admin" : "member" };
  }
}

export class DynamoDbConnectionStore extends DynamoDbTable implements ConnectionStore {
  async put(connection: Connection): Promise<void> {
    await sdk("store connection", () => this.client.send(new PutCommand({ TableName: this.tableName, Item: connection })));
  }

  async get(connectionId: string): Promise<Connection | undefined> {
    const out = await sdk("get connection", () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { connection_id: connectionId }, ConsistentRead: true })),
    );
    return out.Item as Connection | undefined;
  }

  async delete(connectionId: string): Promise<void> {
    await sdk("delete connection", () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { connection_id: connectionId } })));
  }
}

export class DynamoDbSubscriptionStore extends DynamoDbTable implements SubscriptionStore {
  async subscribe(topic: string, connection: Connection): Promise<void> {
    const { connection_id, tenant, expires_at } = connection;
    await sdk("subscribe", () =>
      this.client.send(new PutCommand({ TableName: this.tableName, Item: { topic, connection_id, tenant, expires_at } })),
    );
  }

  async subscribers(topic: string): Promise<readonly string[]> {
    return (await this.#queryAll({ KeyConditionExpression: "topic = :v", ExpressionAttributeValues: { ":v": topic } })).map((i) => String(i.connection_id));
  }

  async removeConnection(connectionId: string): Promise<void> {
    const items = await this.#queryAll({
      IndexName: "connection-index",
      KeyConditionExpression: "connection_id = :v",
      ExpressionAttributeValues: { ":v": connectionId },
    });
    await batchWrite(this.client, this.tableName, items.map((i) => ({ DeleteRequest: { Key: { topic: i.topic, connection_id: i.connection_id } } })));
  }

  async #queryAll(query: { IndexName?: string; KeyConditionExpression: string; ExpressionAttributeValues: Record<string, unknown> }): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await sdk("query subscriptions", () =>
        this.client.send(new QueryCommand({ TableName: this.tableName, ...query, ExclusiveStartKey: start })),
      );
      items.push(...((out.Items ?? []) as Record<string, unknown>[]));
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return items;
  }
}

export class DynamoDbRouteSettingsStore extends DynamoDbTable implements RouteSettingsStore {
  async get(route: string): Promise<RouteSettings | undefined> {
    const out = await sdk(`get settings of ${route}`, () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: { route }, ConsistentRead: true })),
    );
    return (out.Item?.settings as RouteSettings | undefined) ?? undefined;
  }

  async put(route: string, settings: RouteSettings, updatedAt: Date): Promise<void> {
    await sdk(`put settings of ${route}`, () =>
      this.client.send(new PutCommand({ TableName: this.tableName, Item: { route, settings, updated_at: updatedAt.toISOString() } })),
    );
  }
}

export class DynamoDbCapacityLedger extends DynamoDbTable implements CapacityLedger {
  async others(component: string, holder: string, now: Date): Promise<{ load: Load; oldestWaitingMs: number | undefined }> {
    const out = await sdk(`read capacity of ${component}`, () =>
      this.client.send(new QueryCommand({ TableName: this.tableName, KeyConditionExpression: "component = :c", ExpressionAttributeValues: { ":c": component } })),
    );
    const nowSeconds = now.getTime() / 1000;
    const live = (out.Items ?? []).filter((i) => i.holder !== holder && Number(i.expires_at) > nowSeconds);
    const waiting = live.flatMap((i) => (i.oldest_waiting_ms === undefined ? [] : [Number(i.oldest_waiting_ms)]));
    return {
      load: live.reduce<Load>((sum, i) => addLoad(sum, { sequences: Number(i.sequences), tokens: Number(i.tokens) }), noLoad),
      oldestWaitingMs: waiting.length === 0 ? undefined : Math.min(...waiting),
    };
  }

  async publish(component: string, holder: string, entry: LedgerEntry, expiresAt: Date): Promise<void> {
    const { load, oldestWaitingMs } = entry;
    if (load.sequences === 0 && oldestWaitingMs === undefined) {
      await sdk(`release capacity of ${component}`, () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { component, holder } })));
      return;
    }
    const item = {
      component, holder, sequences: load.sequences, tokens: load.tokens, expires_at: Math.ceil(expiresAt.getTime() / 1000),
      ...(oldestWaitingMs !== undefined && { oldest_waiting_ms: oldestWaitingMs }),
    };
    await sdk(`hold capacity of ${component}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: item })));
  }
}

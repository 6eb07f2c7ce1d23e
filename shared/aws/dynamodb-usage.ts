import { BatchGetCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { countChunks, endedCounts, type BatchRecord, type ChunkTally, type RequestCounts } from "../core/batches.ts";
import { holdingsOf, SLOT_CHUNK_LINES, type SlotHolding } from "../core/quotas.ts";
import type { BatchTally, HeldChunk, JobSlot, SlotAudit, SuspectHolding, TenantHoldings, TokenCharge, UsageMeter } from "../ports.ts";
import { conditional, DynamoDbTable, sdk } from "./dynamodb-table.ts";

/** A batch chunk's item outlives any batch (retention is at most 30 days); after its fold it is only a tombstone. */
const CHUNK_TTL_SECONDS = 35 * 86_400;

/**
 * Quota counters that a retry, a lost answer or a repeat cannot move twice (no transactions:
 * dynalite has none, so every change is one conditional write on one item).
 *
 * - `jobs#<tenant>`: `used` (slots held) and `open`, the set of holdings counted in it: a job
 *   submitted alone (its id) or a chunk of a batch's lines. A take adds its holdings and their
 *   slots in one write, conditioned on the first not being there yet; a give-back removes one
 *   and its slots, conditioned on it being there. Either again finds its condition false.
 * - `slots#<tenant>#<batch_id>#<chunk>`: the lines of that chunk still held (`held`, a number set
 *   which a line leaves once however often it is deleted) and `slots`, how many it held. The give-back that empties
 *   it folds it out of `jobs#<tenant>`; a repeat of any of them finds it empty and folds again,
 *   which the condition on `open` makes a no-op. A batch's slots thus come back per chunk.
 *   The same item is the batch's tally (BatchTally): `running` (lines started) and a set per
 *   terminal status, written by the same give-back that ends a line: counting costs no write more.
 * - `tokens#<tenant>#<minute>`: `used` and `charges`, the set of charge ids in it (expires after two minutes).
 * - `suspect` on `jobs#<tenant>`: the slot sweep's holdings found without their job, each
 *   `<since ms> <holding>` (SlotAudit), given back with their slots in one conditional write. The
 *   sweep reads a chunk's `held` lines (and its age, from `expires_at`) to give back those whose
 *   job ended or was never stored.
 */
export class DynamoDbUsageMeter extends DynamoDbTable implements UsageMeter, BatchTally, SlotAudit {
  async takeJobs(tenant: string, jobs: readonly JobSlot[], limit: number): Promise<boolean> {
    const holdings = holdingsOf(jobs);
    const [first] = holdings;
    // The condition lets a counter that does not exist yet take anything: refuse too much here.
    if (!first || jobs.length > limit) return jobs.length === 0;
    // The chunks first: a counted chunk whose item is missing could never be given back.
    await Promise.all(holdings.map((h) => (h.chunk ? this.#putChunk(tenant, h) : undefined)));
    const key = jobsKey(tenant);
    const out = await conditional(`take job slots ${key}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { key },
          UpdateExpression: "ADD used :n, #open :ids",
          ConditionExpression: "(attribute_not_exists(used) OR used <= :room) AND NOT contains(#open, :first)",
          ExpressionAttributeNames: { "#open": "open" },
          ExpressionAttributeValues: { ":n": jobs.length, ":room": limit - jobs.length, ":ids": new Set(holdings.map((h) => h.id)), ":first": first.id },
        }),
      ),
    );
    // Refused: over the limit, or this very take applied already (its answer was lost and the SDK sent it again).
    return out !== undefined || (await this.#holds(key, "open", first.id));
  }

  async giveBackJobs(tenant: string, jobs: readonly JobSlot[]): Promise<void> {
    await Promise.all(holdingsOf(jobs).map((h) => (h.chunk ? this.#giveBackLines(tenant, h) : this.#fold(tenant, h.id, 1))));
  }

  async jobsInFlight(tenant: string): Promise<number> {
    return this.#used(jobsKey(tenant));
  }

  async chargeTokens(tenant: string, minute: number, charge: TokenCharge, limit: number): Promise<boolean> {
    if (charge.tokens > limit) return false;
    const key = tokensKey(tenant, minute);
    const out = await conditional(`charge ${key}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { key },
          UpdateExpression: "ADD used :n, charges :id SET expires_at = :exp",
          ConditionExpression: "(attribute_not_exists(used) OR used <= :room) AND NOT contains(charges, :charge)",
          ExpressionAttributeValues: { ":n": charge.tokens, ":room": limit - charge.tokens, ":id": new Set([charge.id]), ":charge": charge.id, ":exp": (minute + 2) * 60 },
        }),
      ),
    );
    return out !== undefined || (await this.#holds(key, "charges", charge.id));
  }

  async refundTokens(tenant: string, minute: number, charge: TokenCharge): Promise<void> {
    const key = tokensKey(tenant, minute);
    await conditional(`refund ${key}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { key },
          UpdateExpression: "ADD used :n DELETE charges :id",
          ConditionExpression: "contains(charges, :charge)",
          ExpressionAttributeValues: { ":n": -charge.tokens, ":id": new Set([charge.id]), ":charge": charge.id },
        }),
      ),
    );
  }

  tokensCharged(tenant: string, minute: number): Promise<number> {
    return this.#used(tokensKey(tenant, minute));
  }

  async #putChunk(tenant: string, holding: SlotHolding): Promise<void> {
    const lines = holding.chunk?.lines ?? [];
    const expiresAt = Math.ceil(Date.now() / 1000) + CHUNK_TTL_SECONDS;
    // Only if absent: a take sent again (an ingest step redelivered) must not re-hold lines given back since.
    await conditional(`hold chunk ${holding.id}`, () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { key: chunkKey(tenant, holding.id), held: new Set(lines), slots: lines.length, expires_at: expiresAt },
          ConditionExpression: "attribute_not_exists(#key)",
          ExpressionAttributeNames: { "#key": "key" },
        }),
      ),
    );
  }

  async #giveBackLines(tenant: string, holding: SlotHolding): Promise<void> {
    const ended = holding.ended === undefined || holding.ended === "QUEUED" || holding.ended === "RUNNING" ? undefined : holding.ended.toLowerCase();
    const out = await conditional(`give back lines of ${holding.id}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { key: chunkKey(tenant, holding.id) },
          UpdateExpression: ended === undefined ? "DELETE held :lines" : "DELETE held :lines ADD #ended :lines",
          ConditionExpression: "attribute_exists(slots)",
          ExpressionAttributeValues: { ":lines": new Set(holding.chunk?.lines ?? []) },
          ...(ended !== undefined && { ExpressionAttributeNames: { "#ended": ended } }),
          ReturnValues: "ALL_NEW",
        }),
      ),
    );
    // A chunk never held (or gone with its TTL) has nothing to give back.
    const chunk = out?.Attributes;
    if (!chunk || (chunk.held instanceof Set && chunk.held.size > 0)) return;
    await this.#fold(tenant, holding.id, Number(chunk.slots));
  }

  async started(tenant: string, jobs: readonly JobSlot[]): Promise<void> {
    const chunks = holdingsOf(jobs.map((j) => ({ ...j, ended: undefined }))).flatMap((h) => (h.chunk ? [{ id: h.id, lines: h.chunk.lines }] : []));
    await Promise.all(
      chunks.map((c) =>
        conditional(`start lines of ${c.id}`, () =>
          this.client.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: { key: chunkKey(tenant, c.id) },
              UpdateExpression: "ADD running :lines",
              ConditionExpression: "attribute_exists(slots)",
              ExpressionAttributeValues: { ":lines": new Set(c.lines) },
            }),
          ),
        ),
      ),
    );
  }

  async countsOf(batch: BatchRecord): Promise<RequestCounts | undefined> {
    // Lines are numbered in the file (blank lines skipped), so the chunks are read until their
    // slots make the batch's total: the chunks its total needs, then a hundred more at a time.
    const chunks: ChunkTally[] = [];
    let slots = 0;
    for (let next = 0, count = Math.floor(batch.total / SLOT_CHUNK_LINES) + 1; slots < batch.total; next += count, count = 100) {
      const keys = Array.from({ length: count }, (_, i) => ({ key: chunkKey(batch.tenant, `${batch.batch_id}#${next + i}`) }));
      const found = (await this.#getAll(keys)).map(toChunkTally);
      if (found.length === 0) break;
      chunks.push(...found);
      slots += found.reduce((sum, c) => sum + c.slots, 0);
    }
    return chunks.length === 0 ? undefined : countChunks(batch.total, chunks);
  }

  async #getAll(keys: readonly Record<string, string>[]): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    for (let i = 0; i < keys.length; i += 100) {
      let pending: Record<string, unknown>[] | undefined = keys.slice(i, i + 100);
      while (pending && pending.length > 0) {
        const out = await sdk(`read chunks of ${this.tableName}`, () => this.client.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } } })));
        items.push(...(out.Responses?.[this.tableName] ?? []));
        pending = out.UnprocessedKeys?.[this.tableName]?.Keys;
      }
    }
    return items;
  }

  /** Takes a holding out of the tenant's count, if it is still in it. */
  async #fold(tenant: string, holdingId: string, slots: number): Promise<void> {
    const key = jobsKey(tenant);
    await conditional(`give back job slots ${key}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { key },
          UpdateExpression: "ADD used :n DELETE #open :ids",
          ConditionExpression: "contains(#open, :id)",
          ExpressionAttributeNames: { "#open": "open" },
          ExpressionAttributeValues: { ":n": -slots, ":ids": new Set([holdingId]), ":id": holdingId },
        }),
      ),
    );
  }

  /** A Scan of the table for its `jobs#` items (the chunks and minutes are read too: Scan reads the whole table). */
  async holdings(): Promise<TenantHoldings[]> {
    const found: TenantHoldings[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await sdk(`scan ${this.tableName} for slot holdings`, () =>
        this.client.send(
          new ScanCommand({
            TableName: this.tableName,
            FilterExpression: "begins_with(#key, :jobs)",
            ProjectionExpression: "#key, #open, suspect",
            ExpressionAttributeNames: { "#key": "key", "#open": "open" },
            ExpressionAttributeValues: { ":jobs": jobsKey("") },
            ExclusiveStartKey: start,
          }),
        ),
      );
      for (const item of out.Items ?? []) {
        found.push({ tenant: String(item.key).slice(jobsKey("").length), open: strings(item.open), suspect: strings(item.suspect).flatMap(suspectOf) });
      }
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return found.filter((t) => t.open.length > 0 || t.suspect.length > 0);
  }

  async setSuspect(tenant: string, suspect: readonly SuspectHolding[]): Promise<void> {
    const key = jobsKey(tenant);
    // DynamoDB has no empty set: none suspect is no attribute. Never creates the counter.
    const change = suspect.length === 0 ? { UpdateExpression: "REMOVE suspect" } : { UpdateExpression: "SET suspect = :suspect", ExpressionAttributeValues: { ":suspect": new Set(suspect.map(suspectEntry)) } };
    await conditional(`mark suspect holdings of ${key}`, () =>
      this.client.send(new UpdateCommand({ TableName: this.tableName, Key: { key }, ConditionExpression: "attribute_exists(#key)", ExpressionAttributeNames: { "#key": "key" }, ...change })),
    );
  }

  async giveBackSuspect(tenant: string, suspect: SuspectHolding): Promise<boolean> {
    // A chunk holds its lines' slots, as its item says; a job alone, one.
    const slots = suspect.id.includes("#") ? Number((await this.#get(chunkKey(tenant, suspect.id)))?.slots) : 1;
    if (!Number.isInteger(slots)) return false;
    const key = jobsKey(tenant);
    const entry = suspectEntry(suspect);
    const out = await conditional(`give back suspect holding of ${key}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { key },
          UpdateExpression: "ADD used :n DELETE #open :ids, suspect :entries",
          ConditionExpression: "contains(#open, :id) AND contains(suspect, :entry)",
          ExpressionAttributeNames: { "#open": "open" },
          ExpressionAttributeValues: { ":n": -slots, ":ids": new Set([suspect.id]), ":entries": new Set([entry]), ":id": suspect.id, ":entry": entry },
        }),
      ),
    );
    return out !== undefined;
  }

  async heldLines(tenant: string, holdingId: string): Promise<HeldChunk | undefined> {
    const item = await this.#get(chunkKey(tenant, holdingId));
    // Its expiry was set from the time it was put: taken CHUNK_TTL_SECONDS before it.
    return item && { lines: [...numbers(item.held)], takenAtMs: (Number(item.expires_at) - CHUNK_TTL_SECONDS) * 1000 };
  }

  async #holds(key: string, attribute: "open" | "charges", id: string): Promise<boolean> {
    const item = await this.#get(key);
    const set = item?.[attribute];
    return set instanceof Set && set.has(id);
  }

  async #used(key: string): Promise<number> {
    return Number((await this.#get(key))?.used ?? 0);
  }

  async #get(key: string): Promise<Record<string, unknown> | undefined> {
    const out = await sdk(`read ${key}`, () => this.client.send(new GetCommand({ TableName: this.tableName, Key: { key }, ConsistentRead: true })));
    return out.Item;
  }
}

const strings = (value: unknown): string[] => (value instanceof Set ? [...value].map(String) : []);
const suspectEntry = (s: SuspectHolding) => `${s.sinceMs} ${s.id}`;
const suspectOf = (entry: string): SuspectHolding[] => {
  const space = entry.indexOf(" ");
  return space < 0 ? [] : [{ sinceMs: Number(entry.slice(0, space)), id: entry.slice(space + 1) }];
};

const numbers = (value: unknown): ReadonlySet<number> => (value instanceof Set ? new Set([...value].map(Number)) : new Set());

function toChunkTally(item: Record<string, unknown>): ChunkTally {
  const ended = Object.fromEntries(endedCounts.map((status) => [status, numbers(item[status])])) as ChunkTally["ended"];
  return { slots: Number(item.slots ?? 0), running: numbers(item.running), ended };
}

const jobsKey = (tenant: string) => `jobs#${tenant}`;
const chunkKey = (tenant: string, holdingId: string) => `slots#${tenant}#${holdingId}`;
const tokensKey = (tenant: string, minute: number) => `tokens#${tenant}#${minute}`;

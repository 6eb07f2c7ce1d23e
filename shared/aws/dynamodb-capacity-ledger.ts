import { DeleteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { addLoad, noLoad, type Load } from "../core/gpu-batch-policy.ts";
import type { ComponentDrift } from "../core/component-drift.ts";
import type { CapacityLedger, LedgerEntry, LedgerView } from "../ports.ts";
import { DynamoDbTable, hasExpired, sdk, ttlSeconds } from "./dynamodb-table.ts";

const entryItem = z.object({
  holder: z.string(),
  sequences: z.number(),
  tokens: z.number(),
  oldest_waiting_ms: z.number().optional(),
  interactive_waiting: z.boolean().optional(),
  interactive_sequences: z.number().optional(),
  interactive_tokens: z.number().optional(),
  interactive_seen_ms: z.number().optional(),
  top_up_until_ms: z.number().optional(),
  expires_at: z.number(),
});

/**
 * A cancel mark shares the partition of the component's holders, so that the batchers' one Query
 * reads it; its sort key starts with a `#`-word that no holder id (`holder_<hex>`) can start with.
 */
const MARK_PREFIX = "cancel#";
const markItem = z.object({ holder: z.string().startsWith(MARK_PREFIX), job_id: z.string(), expires_at: z.number() });

const markKey = (component: string, jobId: string) => ({ component, holder: `${MARK_PREFIX}${jobId}` });

/**
 * The component's drift from its profile: one item in the holders' partition, so that the
 * batchers' one Query reads it with them. Two windows of at most 16 numbers: some 400 bytes,
 * one write unit a store.
 */
const DRIFT_HOLDER = "drift#";
const driftKey = (component: string) => ({ component, holder: DRIFT_HOLDER });
const driftItem = z.object({
  holder: z.literal(DRIFT_HOLDER),
  decode_log_ratios: z.array(z.number()),
  decode_factor: z.number(),
  prefill_log_ratios: z.array(z.number()),
  prefill_factor: z.number(),
  at_ms: z.number(),
  expires_at: z.number(),
});
const isSpecial = (item: Record<string, unknown>) => String(item.holder).startsWith(MARK_PREFIX) || item.holder === DRIFT_HOLDER;

/** One item per (component, holder): what that batcher holds there, until it expires; and one per cancelled running job. */
export class DynamoDbCapacityLedger extends DynamoDbTable implements CapacityLedger {
  async others(component: string, holder: string, now: Date): Promise<LedgerView> {
    const items = await this.queryAll(`read capacity of ${component}`, { KeyConditionExpression: "component = :c", ExpressionAttributeValues: { ":c": component } });
    const isMark = (item: Record<string, unknown>) => String(item.holder).startsWith(MARK_PREFIX);
    const marks = items.filter(isMark).map((item) => this.decode(markItem, item, `cancel mark ${String(item.holder)} of ${component}`));
    const drift = this.#driftOf(items.find((item) => item.holder === DRIFT_HOLDER), component, now);
    const entries = items.filter((item) => !isSpecial(item)).map((item) => this.decode(entryItem, item, `capacity entry of ${component} held by ${String(item.holder)}`));
    const live = entries.filter((e) => e.holder !== holder && !hasExpired(e.expires_at, now));
    const waiting = live.flatMap((e) => (e.oldest_waiting_ms === undefined ? [] : [e.oldest_waiting_ms]));
    const seen = live.flatMap((e) => (e.interactive_seen_ms === undefined ? [] : [e.interactive_seen_ms]));
    const toppingUp = live.flatMap((e) => (e.top_up_until_ms === undefined ? [] : [e.top_up_until_ms]));
    return {
      load: live.reduce<Load>((sum, e) => addLoad(sum, { sequences: e.sequences, tokens: e.tokens }), noLoad),
      oldestWaitingMs: waiting.length === 0 ? undefined : Math.min(...waiting),
      interactiveWaiting: live.some((e) => e.interactive_waiting === true),
      interactiveLoad: live.reduce<Load>((sum, e) => addLoad(sum, { sequences: e.interactive_sequences ?? 0, tokens: e.interactive_tokens ?? 0 }), noLoad),
      interactiveSeenMs: seen.length === 0 ? undefined : Math.max(...seen),
      topUpUntilMs: toppingUp.length === 0 ? undefined : Math.max(...toppingUp),
      waitingHolders: live.filter((e) => e.oldest_waiting_ms !== undefined).map((e) => e.holder),
      cancelled: marks.filter((m) => !hasExpired(m.expires_at, now)).map((m) => m.job_id),
      ...(drift && { drift }),
    };
  }

  async saveDrift(component: string, drift: ComponentDrift, expiresAt: Date): Promise<void> {
    const item = {
      ...driftKey(component),
      decode_log_ratios: [...drift.decode.logRatios], decode_factor: drift.decode.factor,
      prefill_log_ratios: [...drift.prefill.logRatios], prefill_factor: drift.prefill.factor,
      at_ms: drift.atMs, expires_at: ttlSeconds(expiresAt),
    };
    await sdk(`store the profile drift of ${component}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: item })));
  }

  async drift(component: string, now: Date): Promise<ComponentDrift | undefined> {
    const { Item } = await sdk(`read the profile drift of ${component}`, () => this.client.send(new GetCommand({ TableName: this.tableName, Key: driftKey(component) })));
    return this.#driftOf(Item, component, now);
  }

  #driftOf(item: Record<string, unknown> | undefined, component: string, now: Date): ComponentDrift | undefined {
    if (!item) return undefined;
    const d = this.decode(driftItem, item, `profile drift of ${component}`);
    if (hasExpired(d.expires_at, now)) return undefined;
    return { decode: { logRatios: d.decode_log_ratios, factor: d.decode_factor }, prefill: { logRatios: d.prefill_log_ratios, factor: d.prefill_factor }, atMs: d.at_ms };
  }

  async publish(component: string, holder: string, entry: LedgerEntry, expiresAt: Date): Promise<void> {
    const { load, oldestWaitingMs, interactiveWaiting, interactiveLoad, interactiveSeenMs, topUpUntilMs } = entry;
    if (load.sequences === 0 && oldestWaitingMs === undefined) {
      await sdk(`release capacity of ${component}`, () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { component, holder } })));
      return;
    }
    const item = {
      component, holder, sequences: load.sequences, tokens: load.tokens, expires_at: ttlSeconds(expiresAt),
      ...(oldestWaitingMs !== undefined && { oldest_waiting_ms: oldestWaitingMs }),
      ...(interactiveWaiting === true && oldestWaitingMs !== undefined && { interactive_waiting: true }),
      ...(topUpUntilMs !== undefined && { top_up_until_ms: topUpUntilMs }),
      // Three numbers at most, the first two only while interactive work runs: the item stays far under 1 KB (one write unit).
      ...(interactiveLoad !== undefined && interactiveLoad.sequences > 0 && { interactive_sequences: interactiveLoad.sequences, interactive_tokens: interactiveLoad.tokens }),
      ...(interactiveSeenMs !== undefined && { interactive_seen_ms: interactiveSeenMs }),
    };
    await sdk(`hold capacity of ${component}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: item })));
  }

  async markCancelled(component: string, jobId: string, expiresAt: Date): Promise<void> {
    const item = { ...markKey(component, jobId), job_id: jobId, expires_at: ttlSeconds(expiresAt) };
    await sdk(`mark job ${jobId} cancelled on ${component}`, () => this.client.send(new PutCommand({ TableName: this.tableName, Item: item })));
  }

  async clearCancelled(component: string, jobId: string): Promise<void> {
    await sdk(`clear the cancel mark of job ${jobId} on ${component}`, () => this.client.send(new DeleteCommand({ TableName: this.tableName, Key: markKey(component, jobId) })));
  }
}

import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { Lane } from "../core/lanes.ts";
import { emptyBoard, type BoardReport, type LaneCounts, type QueueBoard, type RateWindow, type SentEstimate, type StartRate } from "../core/queue-position.ts";
import type { QueueBoardStore, QueueWatch } from "../ports.ts";
import { batchWrite, conditional, DynamoDbTable, sdk, ttlSeconds } from "./dynamodb-table.ts";

const BOARD = "board";
const WATCH_PREFIX = "watch#";
const watchKey = (route: string, jobId: string) => ({ route, entry: `${WATCH_PREFIX}${jobId}` });

/** The board's counters and reports, flat: a nested path cannot be SET on an item that lacks its parent. */
const boardItem = z.object({
  submitted_interactive: z.number().default(0),
  submitted_batch: z.number().default(0),
  departed_interactive: z.number().default(0),
  departed_batch: z.number().default(0),
  service_at_ms: z.number().optional(),
  service_copies: z.number().optional(),
  service_slots: z.number().optional(),
  service_held: z.number().optional(),
  service_tokens: z.number().optional(),
  service_held_tokens: z.number().optional(),
  service_decode_factor: z.number().optional(),
  service_prefill_factor: z.number().optional(),
  rate_per_second: z.number().optional(),
  rate_backlogged: z.boolean().optional(),
  rate_at_ms: z.number().optional(),
  rate_arrivals_per_second: z.number().optional(),
  window_started_ms: z.number().optional(),
  window_departed: z.number().optional(),
  window_backlogged: z.boolean().optional(),
  window_submitted: z.number().optional(),
  watched_until_ms: z.number().optional(),
  latency_factor: z.number().optional(),
  latency_factor_at_ms: z.number().optional(),
});

const watchItem = z.object({
  job_id: z.string(),
  lane: z.enum(["interactive", "batch"]),
  ticket: z.number(),
  prompt_tokens: z.number(),
  max_tokens: z.number(),
  version: z.number().optional(),
  connections: z.set(z.string()).default(new Set()),
  last_position: z.number().optional(),
  last_start_ms: z.number().optional(),
});

/**
 * One table of small items per route: `board` (its place-in-line counters, core/queue-position.ts)
 * and `watch#<job>` (a waiting job's watchers, until they expire). Every submit on a route updates
 * its board: one item takes about 1,000 writes a second, far past a route's submits.
 */
export class DynamoDbQueueBoardStore extends DynamoDbTable implements QueueBoardStore {
  async read(route: string): Promise<QueueBoard> {
    const out = await sdk(`read the queue board of ${route}`, () => this.client.send(new GetCommand({ TableName: this.tableName, Key: { route, entry: BOARD } })));
    return out.Item ? this.#board(route, out.Item) : emptyBoard;
  }

  async takeTickets(route: string, lane: Lane, count: number): Promise<QueueBoard> {
    return this.#update(route, `take ${count} tickets in the ${lane} lane of ${route}`, "ADD #submitted :n", { "#submitted": `submitted_${lane}` }, { ":n": count });
  }

  async depart(route: string, departed: LaneCounts, report: BoardReport): Promise<QueueBoard> {
    const { service, backlogged, latency } = report;
    const sets = [
      ...(service ? ["service_at_ms = :at", "service_copies = :copies", "service_slots = :slots", "service_held = :held"] : []),
      ...(service?.tokens !== undefined && service.heldTokens !== undefined ? ["service_tokens = :tokens", "service_held_tokens = :heldTokens"] : []),
      ...(service?.profileFactors ? ["service_decode_factor = :decodeFactor", "service_prefill_factor = :prefillFactor"] : []),
      ...(backlogged ? ["window_backlogged = :true"] : []),
      ...(latency ? ["latency_factor = :factor", "latency_factor_at_ms = :factorAt"] : []),
    ];
    const values = {
      ":di": departed.interactive, ":db": departed.batch,
      ...(service && { ":at": service.atMs, ":copies": service.copies, ":slots": service.slots, ":held": service.held }),
      ...(service?.tokens !== undefined && service.heldTokens !== undefined && { ":tokens": service.tokens, ":heldTokens": service.heldTokens }),
      ...(service?.profileFactors && { ":decodeFactor": service.profileFactors.decode, ":prefillFactor": service.profileFactors.prefill }),
      ...(backlogged && { ":true": true }),
      ...(latency && { ":factor": latency.factor, ":factorAt": latency.atMs }),
    };
    // A report without a correction says the profile holds again: the last one's goes.
    const removes = service && !service.profileFactors ? " REMOVE service_decode_factor, service_prefill_factor" : "";
    const expression = `ADD departed_interactive :di, departed_batch :db${sets.length > 0 ? ` SET ${sets.join(", ")}` : ""}${removes}`;
    return this.#update(route, `count jobs that left the queues of ${route}`, expression, undefined, values);
  }

  async settleLane(route: string, lane: Lane, submitted: number): Promise<boolean> {
    const out = await conditional(`settle the ${lane} lane of ${route}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { route, entry: BOARD },
          UpdateExpression: "SET #departed = :n",
          ConditionExpression: "#submitted = :n AND (attribute_not_exists(#departed) OR #departed <> :n)",
          ExpressionAttributeNames: { "#departed": `departed_${lane}`, "#submitted": `submitted_${lane}` },
          ExpressionAttributeValues: { ":n": submitted },
        }),
      ),
    );
    return out !== undefined;
  }

  async closeRateWindow(route: string, closing: RateWindow | undefined, rate: StartRate | undefined, next: RateWindow): Promise<void> {
    const arrivals = rate?.arrivalsPerSecond;
    const sets = [
      "window_started_ms = :next", "window_departed = :departed", "window_backlogged = :backlogged",
      ...(next.submittedAtStart !== undefined ? ["window_submitted = :submitted"] : []),
      ...(rate ? ["rate_per_second = :rate", "rate_backlogged = :rateBacklogged", "rate_at_ms = :rateAt"] : []),
      ...(arrivals !== undefined ? ["rate_arrivals_per_second = :arrivals"] : []),
    ];
    // What the new window or rate lacks must not be left from an older one beside its fresh time.
    const stale = [...(next.submittedAtStart === undefined ? ["window_submitted"] : []), ...(rate && arrivals === undefined ? ["rate_arrivals_per_second"] : [])];
    const removes = stale.length > 0 ? ` REMOVE ${stale.join(", ")}` : "";
    await conditional(`close the start-rate window of ${route}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { route, entry: BOARD },
          UpdateExpression: `SET ${sets.join(", ")}${removes}`,
          ConditionExpression: closing ? "window_started_ms = :closing" : "attribute_not_exists(window_started_ms)",
          ExpressionAttributeValues: {
            ":next": next.startedMs, ":departed": next.departedAtStart, ":backlogged": next.backlogged,
            ...(next.submittedAtStart !== undefined && { ":submitted": next.submittedAtStart }),
            ...(closing && { ":closing": closing.startedMs }),
            ...(rate && { ":rate": rate.perSecond, ":rateBacklogged": rate.backlogged, ":rateAt": rate.atMs }),
            ...(arrivals !== undefined && { ":arrivals": arrivals }),
          },
        }),
      ),
    );
  }

  async watch(route: string, watch: Omit<QueueWatch, "connections" | "lastSent">, connectionId: string, expiresAt: Date, told?: { readonly sent: SentEstimate; readonly at: Date }): Promise<void> {
    const sets = [
      "job_id = :job", "#lane = :lane", "ticket = :ticket", "prompt_tokens = :prompt", "max_tokens = :max", "expires_at = :expires",
      ...(watch.version === undefined ? [] : ["version = :version"]),
      ...(told ? ["last_position = :position", "last_start_ms = :start", "last_sent_ms = :sentAt"] : []),
    ];
    await sdk(`watch job ${watch.jobId} of ${route}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: watchKey(route, watch.jobId),
          UpdateExpression: `SET ${sets.join(", ")} ADD connections :connection`,
          ExpressionAttributeNames: { "#lane": "lane" },
          ExpressionAttributeValues: {
            ":job": watch.jobId, ":lane": watch.lane, ":ticket": watch.ticket, ":prompt": watch.promptTokens, ":max": watch.maxTokens, ":expires": ttlSeconds(expiresAt), ":connection": new Set([connectionId]),
            ...(watch.version !== undefined && { ":version": watch.version }),
            ...(told && { ":position": told.sent.position, ":start": told.sent.startMs, ":sentAt": told.at.getTime() }),
          },
        }),
      ),
    );
  }

  async flagWatched(route: string, until: Date): Promise<void> {
    await this.#update(route, `flag watches on ${route}`, "SET watched_until_ms = :until", undefined, { ":until": until.getTime() });
  }

  async watches(route: string): Promise<readonly QueueWatch[]> {
    const items = await this.queryAll(`read the watches of ${route}`, {
      KeyConditionExpression: "route = :route AND begins_with(entry, :prefix)",
      ExpressionAttributeValues: { ":route": route, ":prefix": WATCH_PREFIX },
    });
    return items.map((item) => {
      const watch = this.decode(watchItem, item, `watch ${String(item.entry)} of ${route}`);
      const lastSent = watch.last_position !== undefined && watch.last_start_ms !== undefined ? { position: watch.last_position, startMs: watch.last_start_ms } : undefined;
      return { jobId: watch.job_id, lane: watch.lane, ticket: watch.ticket, promptTokens: watch.prompt_tokens, maxTokens: watch.max_tokens, version: watch.version, connections: [...watch.connections], lastSent };
    });
  }

  async noteSent(route: string, jobId: string, sent: SentEstimate, now: Date, minGapMs: number): Promise<boolean> {
    const out = await conditional(`note what the watchers of job ${jobId} were told`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: watchKey(route, jobId),
          UpdateExpression: "SET last_position = :position, last_start_ms = :start, last_sent_ms = :now",
          ConditionExpression: "attribute_exists(job_id) AND (attribute_not_exists(last_sent_ms) OR last_sent_ms <= :latest)",
          ExpressionAttributeValues: { ":position": sent.position, ":start": sent.startMs, ":now": now.getTime(), ":latest": now.getTime() - minGapMs },
        }),
      ),
    );
    return out !== undefined;
  }

  async rewatchAt(route: string, jobId: string, version: number): Promise<void> {
    await conditional(`move the watch of job ${jobId} on to version ${version}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: watchKey(route, jobId),
          UpdateExpression: "SET version = :version",
          ConditionExpression: "attribute_exists(job_id) AND (attribute_not_exists(version) OR version < :version)",
          ExpressionAttributeValues: { ":version": version },
        }),
      ),
    );
  }

  async unwatch(route: string, jobIds: readonly string[]): Promise<void> {
    await batchWrite(this.client, this.tableName, jobIds.map((jobId) => ({ DeleteRequest: { Key: watchKey(route, jobId) } })));
  }

  async #update(route: string, what: string, expression: string, names: Record<string, string> | undefined, values: Record<string, unknown>): Promise<QueueBoard> {
    const out = await sdk(what, () =>
      this.client.send(
        new UpdateCommand({ TableName: this.tableName, Key: { route, entry: BOARD }, UpdateExpression: expression, ExpressionAttributeNames: names, ExpressionAttributeValues: values, ReturnValues: "ALL_NEW" }),
      ),
    );
    return this.#board(route, out.Attributes ?? {});
  }

  #board(route: string, item: Record<string, unknown>): QueueBoard {
    const b = this.decode(boardItem, item, `queue board of ${route}`);
    return {
      submitted: { interactive: b.submitted_interactive, batch: b.submitted_batch },
      departed: { interactive: b.departed_interactive, batch: b.departed_batch },
      service: b.service_at_ms !== undefined && b.service_copies !== undefined && b.service_slots !== undefined && b.service_held !== undefined
        ? {
            atMs: b.service_at_ms, copies: b.service_copies, slots: b.service_slots, held: b.service_held, tokens: b.service_tokens, heldTokens: b.service_held_tokens,
            ...(b.service_decode_factor !== undefined && b.service_prefill_factor !== undefined && { profileFactors: { decode: b.service_decode_factor, prefill: b.service_prefill_factor } }),
          }
        : undefined,
      rate: b.rate_per_second !== undefined && b.rate_at_ms !== undefined
        ? { perSecond: b.rate_per_second, backlogged: b.rate_backlogged ?? false, atMs: b.rate_at_ms, ...(b.rate_arrivals_per_second !== undefined && { arrivalsPerSecond: b.rate_arrivals_per_second }) }
        : undefined,
      window: b.window_started_ms !== undefined
        ? { startedMs: b.window_started_ms, departedAtStart: b.window_departed ?? 0, backlogged: b.window_backlogged ?? false, ...(b.window_submitted !== undefined && { submittedAtStart: b.window_submitted }) }
        : undefined,
      watchedUntilMs: b.watched_until_ms,
      latency: b.latency_factor !== undefined && b.latency_factor_at_ms !== undefined ? { factor: b.latency_factor, atMs: b.latency_factor_at_ms } : undefined,
    };
  }
}

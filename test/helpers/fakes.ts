import { isDeepStrictEqual } from "node:util";
import type { Logger } from "#shared/app/logger";
import { decodeCursor, encodeCursor } from "#shared/aws/cursor";
import { hashApiKey, type ApiKeyRecord, type ApiKeyRole, type Principal } from "#shared/core/api-keys";
import { countChunks, type BatchRecord, type EndedCount } from "#shared/core/batches";
import type { ComponentDrift } from "#shared/core/component-drift";
import type { BatchControlMessage } from "#shared/core/batch-control";
import { applyChange, type BatchChange, type OpenAIBatchStatus } from "#shared/core/openai-batches";
import type { Progress } from "#shared/core/continuation";
import type { GenerationInput, GenerationOutput } from "#shared/core/engine-codec";
import { ConflictError, ConnectionGoneError, ValidationError } from "#shared/core/errors";
import { jobTopic, type ServerEvent } from "#shared/core/events";
import type { JobMessage, JobRecord } from "#shared/core/jobs";
import type { Lane } from "#shared/core/lanes";
import type { Component, RouteCatalog } from "#shared/core/routes";
import { loadRouteCatalog } from "#shared/config";
import { holdingsOf, type TenantQuota } from "#shared/core/quotas";
import type { RouteSettings } from "#shared/core/route-settings";
import { addLoad, noLoad } from "#shared/core/gpu-batch-policy";
import type {
  CopyCount,
  FleetView,
  ApiKeyStore, BatchControlQueue, BatchStore, CapacityLedger, LedgerEntry, LedgerView, Connection, ConnectionStore, IdempotencyStore, Ids, Invoker, InvokeOptions, JobEnding, JobOutcome, JobQueue,
  JobStore, Notifier, Page, PageRequest, ReceivedMessage, RecentJob, RouteSettingsStore, Sleep, SubscriptionStore, TenantStore, TicketStore, UsageMeter, GpuBatchPlacement, JobSlot, TokenCharge, BatchTally, SlotAudit, SuspectHolding,
} from "#shared/ports";
import { MemoryBlobs, MemoryFiles, MemoryUploads, MemoryWebhookOutbox } from "./memory-files.ts";
import { MemoryQueueBoard } from "./memory-queue-board.ts";
import { FakeTime } from "./fake-time.ts";

/**
 * In-memory implementations of the ports, for unit tests of the use cases. Each one behaves as its
 * adapter in shared/aws does on DynamoDB or SQS: test/contract runs the same suite against both.
 */

/** A record as DynamoDB keeps it: the document client drops undefined attributes, and reads give copies. */
function asStored<T>(record: T): T {
  return JSON.parse(JSON.stringify(record)) as T;
}

/** An expiry as the adapters store it: whole epoch seconds (the TTL attribute's unit), rounded up. */
function toTtlPrecision(at: Date): Date {
  return new Date(Math.ceil(at.getTime() / 1000) * 1000);
}

type IndexKey = Record<string, string | number>;

/**
 * One page of a query over an index, as DynamoDB gives it: a full page carries the key of its last
 * item as the cursor (so the page after may be empty), and a cursor that is not a key of this
 * index and partition is refused on the cursor, as the adapters refuse DynamoDB's ValidationException.
 */
function queryPage<T>(items: readonly T[], page: PageRequest, index: { key(item: T): IndexKey; partition: IndexKey; compare(a: IndexKey, b: IndexKey): number }): Page<T> {
  const sorted = items.toSorted((a, b) => index.compare(index.key(a), index.key(b)));
  let start = 0;
  const after = decodeCursor(page.cursor);
  if (after !== undefined) {
    const sample = sorted[0] && index.key(sorted[0]);
    const sameAttributes = sample === undefined || isDeepStrictEqual(Object.keys(after).toSorted(), Object.keys(sample).toSorted());
    const samePartition = Object.entries(index.partition).every(([name, value]) => after[name] === value);
    if (!sameAttributes || !samePartition) throw new ValidationError("cursor: not a cursor this API returned", "cursor");
    start = sorted.findIndex((item) => index.compare(index.key(item), after as IndexKey) > 0);
    if (start === -1) start = sorted.length;
  }
  const taken = sorted.slice(start, start + page.limit);
  const last = taken.at(-1);
  return { items: taken.map(asStored), cursor: taken.length === page.limit && last !== undefined ? encodeCursor(index.key(last)) : undefined };
}

const byKeyParts = (...parts: readonly string[]) => (a: IndexKey, b: IndexKey): number => {
  for (const part of parts) {
    const [x, y] = [a[part] ?? "", b[part] ?? ""];
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
};

const isUnfinished = (job: JobRecord) => job.status === "QUEUED" || job.status === "RUNNING";

export class MemoryJobStore implements JobStore {
  readonly jobs = new Map<string, JobRecord>();
  /** Every successful finish, to prove a result is never written twice. */
  readonly finishes: { jobId: string; attempt: number; status: string }[] = [];

  async create(jobs: readonly JobRecord[]): Promise<void> {
    for (const job of jobs) {
      const existing = this.jobs.get(job.job_id);
      // As the DynamoDB store: the same job created again is taken for its own write whose answer was lost.
      if (existing && existing.created_at === job.created_at && existing.tenant === job.tenant) continue;
      if (existing) throw new ConflictError(`job ${job.job_id} already exists`);
      this.jobs.set(job.job_id, asStored(job));
    }
  }
  async get(jobId: string) {
    const job = this.jobs.get(jobId);
    return job && asStored(job);
  }
  async claim(jobId: string, placement: GpuBatchPlacement, at: Date) {
    return this.#transition(jobId, isUnfinished, (job) => {
      const { waiting_reason: _, ...rest } = job;
      return { ...rest, ...placement, status: "RUNNING", attempt: job.attempt + 1, started_at: at.toISOString(), first_claimed_at: job.first_claimed_at ?? at.toISOString() };
    });
  }
  async finish(jobId: string, attempt: number, outcome: JobOutcome, at: Date) {
    return this.#transition(
      jobId,
      (job) => job.status === "RUNNING" && job.attempt === attempt,
      (job) => {
        this.finishes.push({ jobId, attempt, status: outcome.status });
        const { progress: _, ...rest } = job;
        return { ...rest, ...outcome, finished_at: at.toISOString() };
      },
      (job) => job.status === outcome.status && job.attempt === attempt && job.finished_at === at.toISOString(),
    );
  }
  /** Every stored progress, to count the writes of a long generation. */
  readonly progressWrites: { jobId: string; attempt: number; tokens: number }[] = [];
  async saveProgress(jobId: string, attempt: number, progress: Progress, fromTokens: number) {
    const job = this.jobs.get(jobId);
    if (!job || job.status !== "RUNNING" || job.attempt !== attempt) return false;
    // As the DynamoDB store: a refused write that is already there is this caller's own, retried.
    if ((job.progress?.tokens ?? 0) !== fromTokens) return isDeepStrictEqual(job.progress, progress);
    // As the DynamoDB store: no state changes, so the version stays.
    this.jobs.set(jobId, asStored({ ...job, progress }));
    this.progressWrites.push({ jobId, attempt, tokens: progress.tokens });
    return true;
  }
  async noteSubscribed(jobId: string) {
    const job = this.jobs.get(jobId);
    if (!job) return undefined;
    // As the DynamoDB store: no state changes, so the version stays.
    const counted = asStored({ ...job, subscriptions: (job.subscriptions ?? 0) + 1 });
    this.jobs.set(jobId, counted);
    return asStored(counted);
  }
  async noteWaiting(jobId: string, reason: string, claimedAttempt?: number) {
    if (claimedAttempt === undefined) return this.#transition(jobId, isUnfinished, (job) => ({ ...job, waiting_reason: reason }));
    return this.#transition(
      jobId,
      (job) => job.status === "RUNNING" && job.attempt === claimedAttempt,
      (job) => ({ ...job, status: "QUEUED", waiting_reason: reason, attempt: claimedAttempt - 1 }),
      (job) => job.status === "QUEUED" && job.waiting_reason === reason && job.attempt === claimedAttempt - 1,
    );
  }
  async endUnfinished(jobId: string, ending: JobEnding, at: Date) {
    return this.#transition(
      jobId,
      isUnfinished,
      (job) => ({ ...job, ...ending, finished_at: at.toISOString() }),
      (job) => job.status === ending.status && job.error?.code === ending.error.code && job.finished_at === at.toISOString(),
    );
  }
  async listByBatch(batchId: string, page: PageRequest): Promise<Page<JobRecord>> {
    // The batch index holds only jobs with both a batch id and a line.
    const inBatch = [...this.jobs.values()].filter((j) => j.batch_id === batchId && j.batch_line !== undefined);
    return queryPage(inBatch, page, {
      key: (j) => ({ batch_id: batchId, batch_line: j.batch_line ?? 0, job_id: j.job_id }),
      partition: { batch_id: batchId },
      compare: byKeyParts("batch_line", "job_id"),
    });
  }
  async listRecentByModel(model: string, since: Date, limit: number): Promise<RecentJob[]> {
    // As the index: a job stored without a top-level max_tokens is left out.
    const recent = [...this.jobs.values()]
      .flatMap((j) => (j.model === model && j.created_at >= since.toISOString() && j.max_tokens !== undefined ? [{ created_at: j.created_at, prompt_tokens: j.prompt_tokens, max_tokens: j.max_tokens, lane: j.lane }] : []))
      .toSorted((a, b) => a.created_at.localeCompare(b.created_at));
    return recent.slice(Math.max(0, recent.length - limit));
  }
  /**
   * A conditional update: the job as it now is, or undefined when the condition failed, unless the
   * job already is what this very update makes it (`mine`), which the DynamoDB store takes for
   * its own earlier write whose answer was lost.
   */
  async #transition(jobId: string, allowed: (job: JobRecord) => boolean, change: (job: JobRecord) => JobRecord, mine?: (job: JobRecord) => boolean) {
    const job = this.jobs.get(jobId);
    if (!job) return undefined;
    if (!allowed(job)) return mine?.(job) ? asStored(job) : undefined;
    // As the DynamoDB store: the write that changes the job moves its version on (from 0 for a record without one).
    const changed = asStored({ ...change(job), version: (job.version ?? 0) + 1 });
    this.jobs.set(jobId, changed);
    return asStored(changed);
  }
}

export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly keys = new Map<string, string>();
  async bind(tenant: string, key: string, jobId: string) {
    const id = `${tenant}#${key}`;
    const bound = this.keys.get(id);
    if (bound) return bound;
    this.keys.set(id, jobId);
    return jobId;
  }
  async unbind(tenant: string, key: string, jobId: string) {
    if (this.keys.get(`${tenant}#${key}`) === jobId) this.keys.delete(`${tenant}#${key}`);
  }
}

export class MemoryTenants implements TenantStore {
  readonly quotas = new Map<string, TenantQuota>();
  async quotaOf(tenant: string) {
    const quota = this.quotas.get(tenant);
    return quota && asStored(quota);
  }
  async setQuota(tenant: string, quota: TenantQuota) {
    this.quotas.set(tenant, { max_jobs_in_flight: quota.max_jobs_in_flight, tokens_per_minute: quota.tokens_per_minute });
  }
}

/** As the DynamoDB meter: slots counted per holding (a job alone, a chunk of a batch's lines), each change keyed so a repeat changes nothing. */
export class MemoryUsage implements UsageMeter, BatchTally, SlotAudit {
  readonly #used = new Map<string, number>();
  readonly #members = new Map<string, Set<string>>();
  readonly #suspect = new Map<string, readonly SuspectHolding[]>();
  readonly #chunks = new Map<string, { readonly held: Set<number>; readonly size: number; readonly running: Set<number>; readonly ended: Record<EndedCount, Set<number>>; readonly takenAtMs: number }>();
  readonly #nowMs: () => number;

  constructor(nowMs: () => number = Date.now) {
    this.#nowMs = nowMs;
  }

  async takeJobs(tenant: string, jobs: readonly JobSlot[], limit: number) {
    const holdings = holdingsOf(jobs);
    const [first] = holdings;
    if (!first || jobs.length > limit) return jobs.length === 0;
    for (const h of holdings) {
      const key = `${tenant}#${h.id}`;
      if (h.chunk && !this.#chunks.has(key)) {
        const ended = { succeeded: new Set<number>(), failed: new Set<number>(), cancelled: new Set<number>(), expired: new Set<number>() };
        this.#chunks.set(key, { held: new Set(h.chunk.lines), size: h.chunk.lines.length, running: new Set(), ended, takenAtMs: this.#nowMs() });
      }
    }
    return this.#charge(`jobs#${tenant}`, holdings.map((h) => h.id), jobs.length, limit);
  }
  async giveBackJobs(tenant: string, jobs: readonly JobSlot[]) {
    for (const h of holdingsOf(jobs)) {
      if (!h.chunk) {
        this.#refund(`jobs#${tenant}`, h.id, 1);
        continue;
      }
      const chunk = this.#chunks.get(`${tenant}#${h.id}`);
      if (!chunk) continue;
      const endedAs = h.ended === undefined || h.ended === "QUEUED" || h.ended === "RUNNING" ? undefined : chunk.ended[h.ended.toLowerCase() as EndedCount];
      for (const line of h.chunk.lines) {
        chunk.held.delete(line);
        endedAs?.add(line);
      }
      if (chunk.held.size === 0) this.#refund(`jobs#${tenant}`, h.id, chunk.size);
    }
  }
  async started(tenant: string, jobs: readonly JobSlot[]) {
    for (const h of holdingsOf(jobs)) for (const line of h.chunk?.lines ?? []) this.#chunks.get(`${tenant}#${h.id}`)?.running.add(line);
  }
  async countsOf(batch: BatchRecord) {
    const prefix = `${batch.tenant}#${batch.batch_id}#`;
    const chunks = [...this.#chunks].filter(([key]) => key.startsWith(prefix)).map(([, c]) => ({ slots: c.size, running: c.running, ended: c.ended }));
    return chunks.length === 0 ? undefined : countChunks(batch.total, chunks);
  }
  async jobsInFlight(tenant: string) {
    return this.#used.get(`jobs#${tenant}`) ?? 0;
  }
  async chargeTokens(tenant: string, minute: number, charge: TokenCharge, limit: number) {
    if (charge.tokens > limit) return false;
    return this.#charge(`tokens#${tenant}#${minute}`, [charge.id], charge.tokens, limit);
  }
  async refundTokens(tenant: string, minute: number, charge: TokenCharge) {
    this.#refund(`tokens#${tenant}#${minute}`, charge.id, charge.tokens);
  }
  async tokensCharged(tenant: string, minute: number) {
    return this.#used.get(`tokens#${tenant}#${minute}`) ?? 0;
  }
  async holdings() {
    const tenants = new Set([...[...this.#members.keys()].flatMap((key) => (key.startsWith("jobs#") ? [key.slice("jobs#".length)] : [])), ...this.#suspect.keys()]);
    return [...tenants]
      .map((tenant) => ({ tenant, open: [...(this.#members.get(`jobs#${tenant}`) ?? [])], suspect: this.#suspect.get(tenant) ?? [] }))
      .filter((t) => t.open.length > 0 || t.suspect.length > 0);
  }
  async setSuspect(tenant: string, suspect: readonly SuspectHolding[]) {
    this.#suspect.set(tenant, [...suspect]);
  }
  async giveBackSuspect(tenant: string, suspect: SuspectHolding) {
    const marked = this.#suspect.get(tenant) ?? [];
    if (!this.#members.get(`jobs#${tenant}`)?.has(suspect.id) || !marked.some((s) => s.id === suspect.id && s.sinceMs === suspect.sinceMs)) return false;
    const slots = suspect.id.includes("#") ? this.#chunks.get(`${tenant}#${suspect.id}`)?.size : 1;
    if (slots === undefined) return false;
    this.#refund(`jobs#${tenant}`, suspect.id, slots);
    this.#suspect.set(tenant, marked.filter((s) => s !== suspect && !(s.id === suspect.id && s.sinceMs === suspect.sinceMs)));
    return true;
  }
  async heldLines(tenant: string, holdingId: string) {
    const chunk = this.#chunks.get(`${tenant}#${holdingId}`);
    return chunk && { lines: [...chunk.held], takenAtMs: chunk.takenAtMs };
  }
  #charge(key: string, ids: readonly string[], amount: number, limit: number) {
    const members = this.#members.get(key) ?? new Set<string>();
    if (ids[0] !== undefined && members.has(ids[0])) return true;
    if ((this.#used.get(key) ?? 0) + amount > limit) return false;
    for (const id of ids) members.add(id);
    this.#members.set(key, members);
    this.#used.set(key, (this.#used.get(key) ?? 0) + amount);
    return true;
  }
  #refund(key: string, id: string, amount: number) {
    if (!this.#members.get(key)?.delete(id)) return;
    this.#used.set(key, (this.#used.get(key) ?? 0) - amount);
  }
}

export class MemoryBatchStore implements BatchStore {
  readonly batches = new Map<string, BatchRecord>();
  async create(batch: BatchRecord) {
    const stored = asStored(batch);
    const existing = this.batches.get(batch.batch_id);
    // As the DynamoDB store: the very same record again is its own write whose answer was lost.
    if (existing && !isDeepStrictEqual(existing, stored)) throw new ConflictError(`batch ${batch.batch_id} already exists`);
    this.batches.set(batch.batch_id, stored);
  }
  async get(batchId: string) {
    const batch = this.batches.get(batchId);
    return batch && asStored(batch);
  }
  /** Newest first, through the tenant index (tenant, created_at). */
  async listByTenant(tenant: string, page: PageRequest & { readonly after?: string | undefined }): Promise<Page<BatchRecord>> {
    const newestFirst = byKeyParts("created_at", "batch_id");
    const after = page.after === undefined ? undefined : this.batches.get(page.after);
    if (page.after !== undefined && after?.tenant !== tenant) throw new ValidationError(`after: no batch ${page.after}`, "after");
    const cursor = after ? encodeCursor({ tenant, created_at: after.created_at, batch_id: after.batch_id }) : page.cursor;
    return queryPage([...this.batches.values()].filter((b) => b.tenant === tenant), { limit: page.limit, cursor }, {
      key: (b) => ({ tenant, created_at: b.created_at, batch_id: b.batch_id }),
      partition: { tenant },
      compare: (a, b) => newestFirst(b, a),
    });
  }
  async transition(batchId: string, from: readonly OpenAIBatchStatus[], change: BatchChange) {
    const batch = this.batches.get(batchId);
    if (!batch || batch.kind !== "openai") return undefined;
    // No answer is lost in memory: the DynamoDB store's own-write check (its transition token) has nothing to find here.
    if (!from.includes(batch.status ?? "validating")) return undefined;
    const changed = asStored(applyChange(batch, change));
    this.batches.set(batchId, changed);
    return asStored(changed);
  }
  async markQueued(batchId: string) {
    const batch = this.batches.get(batchId);
    if (!batch || batch.status !== undefined) return;
    const { sweep: _s, sweep_at: _a, ...rest } = batch;
    this.batches.set(batchId, rest);
  }
  /** Through the sparse sweep index (sweep, sweep_at). */
  async listDue(now: number, limit: number) {
    return [...this.batches.values()]
      .filter((b) => b.sweep !== undefined && b.sweep_at !== undefined && b.sweep_at <= now)
      .toSorted((a, b) => (a.sweep_at ?? 0) - (b.sweep_at ?? 0))
      .slice(0, limit)
      .map(asStored);
  }
}

/**
 * A queue with SQS's visible / in-flight / deleted states. Given a Sleep, a receive on an empty
 * queue long-polls as SQS does: it answers when a message comes or its wait is over. Released
 * messages without a delay are visible at once.
 */
export class MemoryQueue implements JobQueue {
  readonly #sleep: Sleep | undefined;
  #arrival = Promise.withResolvers<void>();

  constructor(sleep?: Sleep) {
    this.#sleep = sleep;
  }

  readonly sent: { route: string; message: JobMessage; lane: Lane }[] = [];
  readonly visible: (ReceivedMessage & { route: string })[] = [];
  /** Released with a delay: back once it passes, which these tests never wait for. */
  readonly delayed: (ReceivedMessage & { route: string })[] = [];
  readonly inFlight = new Map<string, ReceivedMessage & { route: string }>();
  readonly deleted: string[] = [];
  readonly released: { messageId: string; delaySeconds: number }[] = [];
  readonly requeued: string[] = [];
  /** Every receive asked of a lane, in order, with what it got: the lanes' order and floor are read from it. */
  // Private behind a getter, so that a test comparing the fakes' state before and after sees no change.
  readonly #receives: { route: string; lane: Lane; max: number; got: number }[] = [];
  /** Every receive: its route, lane, what it asked for and what it got. */
  get receives(): readonly { route: string; lane: Lane; max: number; got: number }[] {
    return this.#receives;
  }
  failWith: Error | undefined;
  #next = 0;

  async enqueue(route: string, messages: readonly JobMessage[], lane: Lane = "batch") {
    if (this.failWith) throw this.failWith;
    for (const message of messages) {
      this.sent.push({ route, message, lane });
      this.#push(route, lane, JSON.stringify(message));
    }
  }
  async receive(route: string, max: number, waitSeconds = 0, lane: Lane = "batch") {
    const inLane = (m: { route: string; lane: Lane }) => m.route === route && m.lane === lane;
    if (this.#sleep && waitSeconds > 0 && !this.visible.some(inLane)) await this.#sleep(waitSeconds * 1000, this.#arrival.promise);
    // As SqsJobQueue: ReceiveMessage takes 1 to 10.
    const taken = this.visible.filter(inLane).slice(0, Math.min(10, Math.max(1, max)));
    for (const m of taken) {
      this.visible.splice(this.visible.indexOf(m), 1);
      this.inFlight.set(m.receiptHandle, m);
    }
    this.#receives.push({ route, lane, max, got: taken.length });
    return taken.map(({ messageId, receiptHandle, body }) => ({ messageId, receiptHandle, body, lane }));
  }
  /** A receipt handle is only good in the queue it came from, as in SQS (there: ReceiptHandleIsInvalid). */
  #take(receiptHandle: string, lane: Lane) {
    const m = this.inFlight.get(receiptHandle);
    if (m && m.lane !== lane) throw new Error(`receipt handle ${receiptHandle} is of the ${m.lane} lane, not ${lane}`);
    return m;
  }
  async delete(_route: string, receiptHandle: string, lane: Lane = "batch") {
    const m = this.#take(receiptHandle, lane);
    if (m) this.deleted.push(m.messageId);
    this.inFlight.delete(receiptHandle);
  }
  async release(_route: string, receiptHandle: string, delaySeconds: number, lane: Lane = "batch") {
    const m = this.#take(receiptHandle, lane);
    if (!m) return;
    this.released.push({ messageId: m.messageId, delaySeconds });
    this.inFlight.delete(receiptHandle);
    // As in SQS, a message released with a delay is not received again until it passes.
    (delaySeconds > 0 ? this.delayed : this.visible).push({ ...m, receiptHandle: `rh-${++this.#next}` });
  }
  /** The delay each requeue asked for, in order. */
  readonly requeueDelays: number[] = [];
  /**
   * Unlike SQS, the new message is visible at once whatever the delay: the unit tests of warming
   * count requeued messages in `visible`. Only the delay asked for is kept (requeueDelays).
   */
  async requeue(route: string, message: { body: string; receiptHandle: string; lane?: Lane | undefined }, delaySeconds: number) {
    const lane = message.lane ?? "batch";
    const m = this.#take(message.receiptHandle, lane);
    if (m) this.requeued.push(m.messageId);
    this.requeueDelays.push(delaySeconds);
    this.inFlight.delete(message.receiptHandle);
    this.#push(route, lane, message.body);
  }
  /**
   * What the event source mapping of `lane` would deliver: up to `max` visible messages, now in
   * flight. Without a lane, what the route's mappings would deliver between them, interactive first.
   */
  takeDelivery(route = "llama-2-7b", max = 10_000, lane?: Lane) {
    const order = (m: { lane: Lane }) => (m.lane === "interactive" ? 0 : 1);
    const taken = this.visible.filter((m) => m.route === route && (lane === undefined || m.lane === lane)).toSorted((a, b) => order(a) - order(b)).slice(0, max);
    for (const m of taken) {
      this.visible.splice(this.visible.indexOf(m), 1);
      this.inFlight.set(m.receiptHandle, m);
    }
    return taken.map(({ messageId, receiptHandle, body, lane: from }) => ({ messageId, receiptHandle, body, lane: from }));
  }
  #push(route: string, lane: Lane, body: string) {
    const n = ++this.#next;
    this.visible.push({ route, lane, messageId: `m${n}`, receiptHandle: `rh-${n}`, body });
    this.#arrival.resolve();
    this.#arrival = Promise.withResolvers<void>();
  }
}

export class MemoryLedger implements CapacityLedger {
  readonly holders = new Map<string, LedgerEntry & { expiresAt: Date }>();
  /** Cancel marks by `component|jobId`, with their expiry. */
  readonly marks = new Map<string, Date>();
  /** Each component's stored drift, with its expiry. */
  readonly drifts = new Map<string, { readonly drift: ComponentDrift; readonly expiresAt: Date }>();
  async others(component: string, holder: string, now: Date): Promise<LedgerView> {
    let load = noLoad;
    let oldestWaitingMs: number | undefined;
    let interactiveWaiting = false;
    let interactiveLoad = noLoad;
    let interactiveSeenMs: number | undefined;
    let topUpUntilMs: number | undefined;
    const waitingHolders: string[] = [];
    for (const [key, entry] of this.holders) {
      if (!key.startsWith(`${component}|`) || key === `${component}|${holder}` || entry.expiresAt <= now) continue;
      load = addLoad(load, entry.load);
      if (entry.interactiveLoad !== undefined && entry.interactiveLoad.sequences > 0) interactiveLoad = addLoad(interactiveLoad, entry.interactiveLoad);
      if (entry.interactiveSeenMs !== undefined) interactiveSeenMs = Math.max(interactiveSeenMs ?? Number.NEGATIVE_INFINITY, entry.interactiveSeenMs);
      if (entry.topUpUntilMs !== undefined) topUpUntilMs = Math.max(topUpUntilMs ?? Number.NEGATIVE_INFINITY, entry.topUpUntilMs);
      if (entry.interactiveWaiting === true && entry.oldestWaitingMs !== undefined) interactiveWaiting = true;
      if (entry.oldestWaitingMs !== undefined) oldestWaitingMs = Math.min(oldestWaitingMs ?? Number.POSITIVE_INFINITY, entry.oldestWaitingMs);
      if (entry.oldestWaitingMs !== undefined) waitingHolders.push(key.slice(component.length + 1));
    }
    const cancelled = [...this.marks].filter(([key, expiresAt]) => key.startsWith(`${component}|`) && expiresAt > now).map(([key]) => key.slice(component.length + 1));
    const drift = await this.drift(component, now);
    return { load, oldestWaitingMs, interactiveWaiting, interactiveLoad, interactiveSeenMs, topUpUntilMs, cancelled, waitingHolders, ...(drift && { drift }) };
  }
  async saveDrift(component: string, drift: ComponentDrift, expiresAt: Date) {
    this.drifts.set(component, { drift, expiresAt: toTtlPrecision(expiresAt) });
  }
  async drift(component: string, now: Date): Promise<ComponentDrift | undefined> {
    const stored = this.drifts.get(component);
    return stored && stored.expiresAt > now ? stored.drift : undefined;
  }
  async publish(component: string, holder: string, entry: LedgerEntry, expiresAt: Date) {
    if (entry.load.sequences === 0 && entry.oldestWaitingMs === undefined) this.holders.delete(`${component}|${holder}`);
    else this.holders.set(`${component}|${holder}`, { ...entry, expiresAt: toTtlPrecision(expiresAt) });
  }
  async markCancelled(component: string, jobId: string, expiresAt: Date) {
    this.marks.set(`${component}|${jobId}`, toTtlPrecision(expiresAt));
  }
  async clearCancelled(component: string, jobId: string) {
    this.marks.delete(`${component}|${jobId}`);
  }
}

export class MemoryRouteSettings implements RouteSettingsStore {
  readonly settings = new Map<string, RouteSettings>();
  async get(route: string) {
    const settings = this.settings.get(route);
    return settings && asStored(settings);
  }
  async put(route: string, settings: RouteSettings, _updatedAt?: Date) {
    this.settings.set(route, settings);
  }
}

export class MemoryApiKeys implements ApiKeyStore {
  readonly records = new Map<string, ApiKeyRecord>();
  /** Registers a key for a tenant, as the tenant tool would. */
  add(key: string, tenant: string, role: ApiKeyRole = "member") {
    this.records.set(hashApiKey(key), { key_hash: hashApiKey(key), tenant, role, name: `${tenant} key`, created_at: "2026-11-27T12:00:00.000Z" });
  }
  async principalOf(keyHash: string): Promise<Principal | undefined> {
    const record = this.records.get(keyHash);
    return record && { tenant: record.tenant, role: record.role ?? "member" };
  }
  async listByTenant(tenant: string) {
    return [...this.records.values()].filter((r) => r.tenant === tenant).map(asStored);
  }
  async put(record: ApiKeyRecord) {
    this.records.set(record.key_hash, asStored(record));
  }
  async delete(keyHash: string) {
    this.records.delete(keyHash);
  }
}

export class MemoryTickets implements TicketStore {
  readonly tickets = new Map<string, { principal: Principal; expiresAt: Date }>();
  async put(ticketHash: string, principal: Principal, expiresAt: Date) {
    this.tickets.set(ticketHash, { principal: { tenant: principal.tenant, role: principal.role }, expiresAt: toTtlPrecision(expiresAt) });
  }
  async take(ticketHash: string, now: Date) {
    const ticket = this.tickets.get(ticketHash);
    this.tickets.delete(ticketHash);
    return ticket && ticket.expiresAt > now ? ticket.principal : undefined;
  }
}

export class MemoryConnections implements ConnectionStore {
  readonly connections = new Map<string, Connection>();
  async put(c: Connection) {
    this.connections.set(c.connection_id, asStored(c));
  }
  async get(id: string) {
    const connection = this.connections.get(id);
    return connection && asStored(connection);
  }
  async delete(id: string) {
    this.connections.delete(id);
  }
}

export class MemorySubscriptions implements SubscriptionStore {
  readonly topics = new Map<string, Set<string>>();
  async subscribe(topic: string, connection: Connection) {
    const set = this.topics.get(topic) ?? new Set();
    set.add(connection.connection_id);
    this.topics.set(topic, set);
  }
  async subscribers(topic: string) {
    return [...(this.topics.get(topic) ?? [])];
  }
  async removeConnection(connectionId: string) {
    for (const set of this.topics.values()) set.delete(connectionId);
  }
}

export class RecordingNotifier implements Notifier {
  readonly posts: { connectionId: string; event: ServerEvent }[] = [];
  readonly gone = new Set<string>();
  async post(connectionId: string, event: ServerEvent) {
    if (this.gone.has(connectionId)) throw new ConnectionGoneError(connectionId);
    this.posts.push({ connectionId, event });
  }
  eventsFor(connectionId: string): ServerEvent[] {
    return this.posts.filter((p) => p.connectionId === connectionId).map((p) => p.event);
  }
}

/** Waits for `work`, or rejects with the signal's reason as soon as it is aborted, as a call given up does. */
async function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  signal.throwIfAborted();
  const aborted = Promise.withResolvers<never>();
  const abort = () => aborted.reject(signal.reason);
  signal.addEventListener("abort", abort, { once: true });
  try {
    return await Promise.race([work, aborted.promise]);
  } finally {
    signal.removeEventListener("abort", abort);
  }
}

/**
 * An engine stand-in: answers each prompt with `max_new_tokens` words, or with what `behaviour`
 * says. A streamed answer sends its words one by one in the time of `sleep` (FakeTime's in
 * memoryDeps), paced by `streamPacing`.
 */
export class ScriptedInvoker implements Invoker {
  readonly calls: { component: string; inputs: readonly GenerationInput[] }[] = [];
  readonly streamCalls: { component: string; input: GenerationInput }[] = [];
  /** Calls wait on this before answering, so a test can see how many are in flight at once. */
  gate: Promise<void> = Promise.resolve();
  inFlight = 0;
  maxInFlight = 0;
  behaviour: (input: GenerationInput) => GenerationOutput | Error = (input) => ({
    text: Array.from({ length: input.max_new_tokens }, () => "word").join(" "),
    completion_tokens: input.max_new_tokens,
    finish_reason: "length",
  });
  /** A streamed answer's first token comes `firstTokenMs` after the gate opens, each next one `tokenMs` later. */
  streamPacing = { firstTokenMs: 30, tokenMs: 10 };
  /** A streamed answer's tokens: by default its words, each with the space before it. */
  streamTokens: (output: GenerationOutput) => readonly string[] = (output) => output.text.split(/(?= )/);
  /** Breaks the `call`-th stream (from 0) after `afterTokens` tokens with `error`; undefined lets it end. */
  streamBreak: (call: number) => { readonly afterTokens: number; readonly error: Error } | undefined = () => undefined;
  readonly #sleep: Sleep;

  constructor(sleep: Sleep = async () => {}) {
    this.#sleep = sleep;
  }

  async invoke(component: Component, inputs: readonly GenerationInput[], options: InvokeOptions = {}) {
    this.calls.push({ component: component.name, inputs });
    this.inFlight += inputs.length;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await unlessAborted(this.gate, options.signal);
    } catch (reason) {
      return inputs.map((): PromiseSettledResult<GenerationOutput> => ({ status: "rejected", reason }));
    } finally {
      this.inFlight -= inputs.length;
    }
    return inputs.map((input): PromiseSettledResult<GenerationOutput> => {
      const out = this.behaviour(input);
      return out instanceof Error ? { status: "rejected", reason: out } : { status: "fulfilled", value: out };
    });
  }

  async invokeStream(component: Component, input: GenerationInput, onText: (text: string) => void, options: InvokeOptions = {}) {
    const call = this.streamCalls.push({ component: component.name, input }) - 1;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await unlessAborted(this.gate, options.signal);
      const out = this.behaviour(input);
      if (out instanceof Error) throw out;
      const broken = this.streamBreak(call);
      for (const [i, token] of this.streamTokens(out).entries()) {
        if (broken?.afterTokens === i) throw broken.error;
        await unlessAborted(this.#sleep(i === 0 ? this.streamPacing.firstTokenMs : this.streamPacing.tokenMs), options.signal);
        onText(token);
      }
      return out;
    } finally {
      this.inFlight--;
    }
  }
}

/** Copy counts as a test sets them; a component not set runs the copies its routes file names. */
export class SettableFleet implements FleetView {
  readonly counts = new Map<string, CopyCount>();
  // Private, so that a test comparing the fakes' state before and after sees reads as no change.
  #reads = 0;
  get reads(): number {
    return this.#reads;
  }
  async copies(component: Component): Promise<CopyCount> {
    this.#reads++;
    return this.counts.get(component.name) ?? { current: component.copies, desired: component.copies };
  }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function sequentialIds(): Ids {
  let n = 0;
  return { job: () => `job_${++n}`, batch: () => `batch_${++n}`, gpuBatch: () => `gpu_${++n}`, holder: () => `holder_${++n}` };
}

export function defaultCatalog(): RouteCatalog {
  return loadRouteCatalog("infra/routes.yml");
}

/** The batch-control queue in memory: what was sent, in order; `take` hands the messages over as a poller would. */
export class MemoryBatchControlQueue implements BatchControlQueue {
  readonly sent: BatchControlMessage[] = [];
  async send(message: BatchControlMessage) {
    this.sent.push(message);
  }
  take(): BatchControlMessage[] {
    return this.sent.splice(0);
  }
}

/** Every port in memory, wired like shared/aws/deps.ts wires the real ones. */
export function memoryDeps(catalog: RouteCatalog = defaultCatalog()) {
  const time = new FakeTime();
  return {
    time,
    catalog,
    jobs: new MemoryJobStore(),
    idempotency: new MemoryIdempotencyStore(),
    batches: new MemoryBatchStore(),
    queue: new MemoryQueue(time.sleep),
    apiKeys: new MemoryApiKeys(),
    tickets: new MemoryTickets(),
    tenants: new MemoryTenants(),
    usage: new MemoryUsage(() => time.nowMs),
    // The job store here gives nothing back as jobs end (QuotaReleasingJobStore does, where a test
    // wires it): batches are counted by reading their jobs, as a batch from before tallies is.
    tally: { started: async () => {}, countsOf: async () => undefined } satisfies BatchTally,
    connections: new MemoryConnections(),
    subscriptions: new MemorySubscriptions(),
    notifier: new RecordingNotifier(),
    invoker: new ScriptedInvoker(time.sleep),
    fleet: new SettableFleet(),
    clock: time,
    ids: sequentialIds(),
    logger: silentLogger,
    ledger: new MemoryLedger(),
    routeSettings: new MemoryRouteSettings(),
    queueBoard: new MemoryQueueBoard(),
    files: new MemoryFiles(),
    blobs: new MemoryBlobs(),
    uploads: new MemoryUploads(),
    webhooks: new MemoryWebhookOutbox(),
    batchControl: new MemoryBatchControlQueue(),
    sleep: time.sleep,
    random: () => 0.5,
  };
}

/** What a subscribe to a job does: stores the subscription, then counts it on the job (JobStore.noteSubscribed). */
export async function subscribeToJob(deps: { readonly subscriptions: SubscriptionStore; readonly jobs: JobStore }, jobId: string, connectionId: string, tenant = "acme"): Promise<void> {
  await deps.subscriptions.subscribe(jobTopic(jobId), connectionOf(connectionId, tenant));
  await deps.jobs.noteSubscribed(jobId);
}

/** A connection of tenant acme, for subscribing in tests. */
export function connectionOf(connectionId: string, tenant = "acme"): Connection {
  return { connection_id: connectionId, tenant, connected_at: "2026-11-27T12:00:00.000Z", expires_at: 1_900_000_000 };
}

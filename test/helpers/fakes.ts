import type { Logger } from "#shared/app/logger";
import { hashApiKey, type ApiKeyRecord, type ApiKeyRole, type Principal } from "#shared/core/api-keys";
import type { BatchRecord } from "#shared/core/batches";
import type { GenerationInput, GenerationOutput } from "#shared/core/engine-codec";
import { ConflictError, ConnectionGoneError } from "#shared/core/errors";
import type { ServerEvent } from "#shared/core/events";
import type { JobMessage, JobRecord } from "#shared/core/jobs";
import type { Component, RouteCatalog } from "#shared/core/routes";
import { loadRouteCatalog } from "#shared/config";
import type { TenantQuota } from "#shared/core/quotas";
import type { RouteSettings } from "#shared/core/route-settings";
import { addLoad, noLoad } from "#shared/core/window-policy";
import type {
  CopyCount,
  FleetView,
  ApiKeyStore, BatchStore, CapacityLedger, LedgerEntry, Connection, ConnectionStore, IdempotencyStore, Ids, Invoker, JobEnding, JobOutcome, JobQueue,
  JobStore, Notifier, Page, PageRequest, ReceivedMessage, RouteSettingsStore, SubscriptionStore, TenantStore, TicketStore, UsageMeter, WindowPlacement,
} from "#shared/ports";
import { FakeTime } from "./fake-time.ts";

/** In-memory implementations of the ports, for unit tests of the use cases. */
export class MemoryJobStore implements JobStore {
  readonly jobs = new Map<string, JobRecord>();
  /** Every successful finish, to prove a result is never written twice. */
  readonly finishes: { jobId: string; attempt: number; status: string }[] = [];

  async create(jobs: readonly JobRecord[]): Promise<void> {
    for (const job of jobs) {
      if (this.jobs.has(job.job_id)) throw new ConflictError(`job ${job.job_id} already exists`);
      this.jobs.set(job.job_id, structuredClone(job));
    }
  }
  async get(jobId: string) {
    const job = this.jobs.get(jobId);
    return job && structuredClone(job);
  }
  async claim(jobId: string, placement: WindowPlacement, at: Date) {
    const job = this.jobs.get(jobId);
    if (!job || (job.status !== "QUEUED" && job.status !== "RUNNING")) return undefined;
    const claimed: JobRecord = { ...job, ...placement, status: "RUNNING", attempt: job.attempt + 1, started_at: at.toISOString(), waiting_reason: undefined };
    this.jobs.set(jobId, claimed);
    return structuredClone(claimed);
  }
  async finish(jobId: string, attempt: number, outcome: JobOutcome, at: Date) {
    const job = this.jobs.get(jobId);
    if (!job || job.status !== "RUNNING" || job.attempt !== attempt) return undefined;
    const finished: JobRecord = { ...job, ...outcome, finished_at: at.toISOString() };
    this.jobs.set(jobId, finished);
    this.finishes.push({ jobId, attempt, status: outcome.status });
    return structuredClone(finished);
  }
  async noteWaiting(jobId: string, reason: string, claimedAttempt?: number) {
    const job = this.jobs.get(jobId);
    if (!job || (job.status !== "QUEUED" && job.status !== "RUNNING")) return undefined;
    if (claimedAttempt !== undefined && (job.status !== "RUNNING" || job.attempt !== claimedAttempt)) return undefined;
    const waiting: JobRecord = { ...job, waiting_reason: reason, ...(claimedAttempt !== undefined && { status: "QUEUED" as const, attempt: claimedAttempt - 1 }) };
    this.jobs.set(jobId, waiting);
    return structuredClone(waiting);
  }
  async endUnfinished(jobId: string, ending: JobEnding, at: Date) {
    const job = this.jobs.get(jobId);
    if (!job || (job.status !== "QUEUED" && job.status !== "RUNNING")) return undefined;
    const ended: JobRecord = { ...job, ...ending, finished_at: at.toISOString() };
    this.jobs.set(jobId, ended);
    return structuredClone(ended);
  }
  async listByBatch(batchId: string, page: PageRequest): Promise<Page<JobRecord>> {
    const all = [...this.jobs.values()].filter((j) => j.batch_id === batchId).sort((a, b) => (a.batch_line ?? 0) - (b.batch_line ?? 0));
    const start = page.cursor === undefined ? 0 : Number(page.cursor);
    const items = all.slice(start, start + page.limit);
    return { items, cursor: start + page.limit < all.length ? String(start + page.limit) : undefined };
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
    return this.quotas.get(tenant);
  }
  async setQuota(tenant: string, quota: TenantQuota) {
    this.quotas.set(tenant, quota);
  }
}

export class MemoryUsage implements UsageMeter {
  readonly counters = new Map<string, number>();
  async takeJobs(tenant: string, count: number, limit: number) {
    return this.#charge(`jobs#${tenant}`, count, limit);
  }
  async giveBackJobs(tenant: string, count: number) {
    this.#add(`jobs#${tenant}`, -count);
  }
  async chargeTokens(tenant: string, minute: number, tokens: number, limit: number) {
    return this.#charge(`tokens#${tenant}#${minute}`, tokens, limit);
  }
  async refundTokens(tenant: string, minute: number, tokens: number) {
    this.#add(`tokens#${tenant}#${minute}`, -tokens);
  }
  #charge(key: string, amount: number, limit: number) {
    if ((this.counters.get(key) ?? 0) + amount > limit) return false;
    this.#add(key, amount);
    return true;
  }
  #add(key: string, amount: number) {
    this.counters.set(key, (this.counters.get(key) ?? 0) + amount);
  }
}

export class MemoryBatchStore implements BatchStore {
  readonly batches = new Map<string, BatchRecord>();
  async create(batch: BatchRecord) {
    this.batches.set(batch.batch_id, batch);
  }
  async get(batchId: string) {
    return this.batches.get(batchId);
  }
  async listByTenant(tenant: string, page: PageRequest): Promise<Page<BatchRecord>> {
    return { items: [...this.batches.values()].filter((b) => b.tenant === tenant).slice(0, page.limit) };
  }
}

/** A queue with SQS's visible / in-flight / deleted states, minus timing: released messages are visible at once. */
export class MemoryQueue implements JobQueue {
  readonly sent: { route: string; message: JobMessage }[] = [];
  readonly visible: (ReceivedMessage & { route: string })[] = [];
  /** Released with a delay: back once it passes, which these tests never wait for. */
  readonly delayed: (ReceivedMessage & { route: string })[] = [];
  readonly inFlight = new Map<string, ReceivedMessage & { route: string }>();
  readonly deleted: string[] = [];
  readonly released: { messageId: string; delaySeconds: number }[] = [];
  readonly requeued: string[] = [];
  failWith: Error | undefined;
  #next = 0;

  async enqueue(route: string, messages: readonly JobMessage[]) {
    if (this.failWith) throw this.failWith;
    for (const message of messages) {
      this.sent.push({ route, message });
      this.#push(route, JSON.stringify(message));
    }
  }
  async receive(route: string, max: number) {
    const taken = this.visible.filter((m) => m.route === route).slice(0, max);
    for (const m of taken) {
      this.visible.splice(this.visible.indexOf(m), 1);
      this.inFlight.set(m.receiptHandle, m);
    }
    return taken.map(({ messageId, receiptHandle, body }) => ({ messageId, receiptHandle, body }));
  }
  async delete(_route: string, receiptHandle: string) {
    const m = this.inFlight.get(receiptHandle);
    if (m) this.deleted.push(m.messageId);
    this.inFlight.delete(receiptHandle);
  }
  async release(_route: string, receiptHandle: string, delaySeconds: number) {
    const m = this.inFlight.get(receiptHandle);
    if (!m) return;
    this.released.push({ messageId: m.messageId, delaySeconds });
    this.inFlight.delete(receiptHandle);
    // As in SQS, a message released with a delay is not received again until it passes.
    (delaySeconds > 0 ? this.delayed : this.visible).push({ ...m, receiptHandle: `rh-${++this.#next}` });
  }
  /** The delay each requeue asked for, in order. */
  readonly requeueDelays: number[] = [];
  async requeue(route: string, message: { body: string; receiptHandle: string }, delaySeconds: number) {
    const m = this.inFlight.get(message.receiptHandle);
    if (m) this.requeued.push(m.messageId);
    this.requeueDelays.push(delaySeconds);
    this.inFlight.delete(message.receiptHandle);
    this.#push(route, message.body);
  }
  /** What the event source mapping would deliver: up to `max` visible messages, now in flight. */
  takeWindow(route = "llama-2-7b", max = 10_000) {
    const taken = this.visible.filter((m) => m.route === route).slice(0, max);
    for (const m of taken) {
      this.visible.splice(this.visible.indexOf(m), 1);
      this.inFlight.set(m.receiptHandle, m);
    }
    return taken.map(({ messageId, receiptHandle, body }) => ({ messageId, receiptHandle, body }));
  }
  #push(route: string, body: string) {
    const n = ++this.#next;
    this.visible.push({ route, messageId: `m${n}`, receiptHandle: `rh-${n}`, body });
  }
}

export class MemoryLedger implements CapacityLedger {
  readonly holders = new Map<string, LedgerEntry & { expiresAt: Date }>();
  async others(component: string, holder: string, now: Date) {
    let load = noLoad;
    let oldestWaitingMs: number | undefined;
    for (const [key, entry] of this.holders) {
      if (!key.startsWith(`${component}|`) || key === `${component}|${holder}` || entry.expiresAt <= now) continue;
      load = addLoad(load, entry.load);
      if (entry.oldestWaitingMs !== undefined) oldestWaitingMs = Math.min(oldestWaitingMs ?? Number.POSITIVE_INFINITY, entry.oldestWaitingMs);
    }
    return { load, oldestWaitingMs };
  }
  async publish(component: string, holder: string, entry: LedgerEntry, expiresAt: Date) {
    if (entry.load.sequences === 0 && entry.oldestWaitingMs === undefined) this.holders.delete(`${component}|${holder}`);
    else this.holders.set(`${component}|${holder}`, { ...entry, expiresAt });
  }
}

export class MemoryRouteSettings implements RouteSettingsStore {
  readonly settings = new Map<string, RouteSettings>();
  async get(route: string) {
    return this.settings.get(route);
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
    return [...this.records.values()].filter((r) => r.tenant === tenant);
  }
  async put(record: ApiKeyRecord) {
    this.records.set(record.key_hash, record);
  }
  async delete(keyHash: string) {
    this.records.delete(keyHash);
  }
}

export class MemoryTickets implements TicketStore {
  readonly tickets = new Map<string, { principal: Principal; expiresAt: Date }>();
  async put(ticketHash: string, principal: Principal, expiresAt: Date) {
    this.tickets.set(ticketHash, { principal, expiresAt });
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
    this.connections.set(c.connection_id, c);
  }
  async get(id: string) {
    return this.connections.get(id);
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

/** An engine stand-in: answers each prompt with `max_new_tokens` words, or with what `behaviour` says. */
export class ScriptedInvoker implements Invoker {
  readonly calls: { component: string; inputs: readonly GenerationInput[] }[] = [];
  /** Calls wait on this before answering, so a test can see how many are in flight at once. */
  gate: Promise<void> = Promise.resolve();
  inFlight = 0;
  maxInFlight = 0;
  behaviour: (input: GenerationInput) => GenerationOutput | Error = (input) => ({
    text: Array.from({ length: input.max_new_tokens }, () => "word").join(" "),
    completion_tokens: input.max_new_tokens,
    finish_reason: "length",
  });
  async invoke(component: Component, inputs: readonly GenerationInput[]) {
    this.calls.push({ component: component.name, inputs });
    this.inFlight += inputs.length;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await this.gate;
    this.inFlight -= inputs.length;
    return inputs.map((input): PromiseSettledResult<GenerationOutput> => {
      const out = this.behaviour(input);
      return out instanceof Error ? { status: "rejected", reason: out } : { status: "fulfilled", value: out };
    });
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

/** Every port in memory, wired like shared/aws/deps.ts wires the real ones. */
export function memoryDeps(catalog: RouteCatalog = defaultCatalog()) {
  const time = new FakeTime();
  return {
    time,
    catalog,
    jobs: new MemoryJobStore(),
    idempotency: new MemoryIdempotencyStore(),
    batches: new MemoryBatchStore(),
    queue: new MemoryQueue(),
    apiKeys: new MemoryApiKeys(),
    tickets: new MemoryTickets(),
    tenants: new MemoryTenants(),
    usage: new MemoryUsage(),
    connections: new MemoryConnections(),
    subscriptions: new MemorySubscriptions(),
    notifier: new RecordingNotifier(),
    invoker: new ScriptedInvoker(),
    fleet: new SettableFleet(),
    clock: time,
    ids: sequentialIds(),
    logger: silentLogger,
    ledger: new MemoryLedger(),
    routeSettings: new MemoryRouteSettings(),
    sleep: time.sleep,
    random: () => 0.5,
  };
}

/** A connection of tenant acme, for subscribing in tests. */
export function connectionOf(connectionId: string, tenant = "acme"): Connection {
  return { connection_id: connectionId, tenant, connected_at: "2026-11-27T12:00:00.000Z", expires_at: 1_900_000_000 };
}

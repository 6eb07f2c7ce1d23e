import type { Logger } from "#shared/app/logger";
import type { BatchRecord } from "#shared/core/batches";
import type { GenerationInput, GenerationOutput } from "#shared/core/engine-codec";
import { ConflictError, ConnectionGoneError } from "#shared/core/errors";
import type { ServerEvent } from "#shared/core/events";
import type { JobMessage, JobRecord } from "#shared/core/jobs";
import type { Component, RouteCatalog } from "#shared/core/routes";
import { loadRouteCatalog } from "#shared/config";
import type {
  ApiKeyStore, BatchStore, Clock, Connection, ConnectionStore, IdempotencyStore, Ids, Invoker, JobOutcome, JobQueue,
  JobStore, Notifier, Page, PageRequest, SubscriptionStore, WindowPlacement,
} from "#shared/ports";

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
  async failUnfinished(jobId: string, error: { code: string; message: string }, at: Date) {
    const job = this.jobs.get(jobId);
    if (!job || (job.status !== "QUEUED" && job.status !== "RUNNING")) return undefined;
    const failed: JobRecord = { ...job, status: "FAILED", error, finished_at: at.toISOString() };
    this.jobs.set(jobId, failed);
    return structuredClone(failed);
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

export class MemoryQueue implements JobQueue {
  readonly sent: { route: string; message: JobMessage }[] = [];
  failWith: Error | undefined;
  async enqueue(route: string, messages: readonly JobMessage[]) {
    if (this.failWith) throw this.failWith;
    this.sent.push(...messages.map((message) => ({ route, message })));
  }
}

export class MemoryApiKeys implements ApiKeyStore {
  readonly tenants = new Map<string, string>();
  async tenantOf(keyHash: string) {
    return this.tenants.get(keyHash);
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
  behaviour: (input: GenerationInput) => GenerationOutput | Error = (input) => ({
    text: Array.from({ length: input.max_new_tokens }, () => "word").join(" "),
    completion_tokens: input.max_new_tokens,
    finish_reason: "length",
  });
  async invoke(component: Component, inputs: readonly GenerationInput[]) {
    this.calls.push({ component: component.name, inputs });
    return inputs.map((input): PromiseSettledResult<GenerationOutput> => {
      const out = this.behaviour(input);
      return out instanceof Error ? { status: "rejected", reason: out } : { status: "fulfilled", value: out };
    });
  }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function fixedClock(iso = "2026-11-27T12:00:00.000Z"): Clock & { advance(ms: number): void } {
  let now = Date.parse(iso);
  return { now: () => new Date(now), advance: (ms) => void (now += ms) };
}

export function sequentialIds(): Ids {
  let n = 0;
  return { job: () => `job_${++n}`, batch: () => `batch_${++n}`, window: () => `win_${++n}` };
}

export function defaultCatalog(): RouteCatalog {
  return loadRouteCatalog("infra/routes.yml");
}

/** Every port in memory, wired like shared/aws/deps.ts wires the real ones. */
export function memoryDeps(catalog: RouteCatalog = defaultCatalog()) {
  return {
    catalog,
    jobs: new MemoryJobStore(),
    idempotency: new MemoryIdempotencyStore(),
    batches: new MemoryBatchStore(),
    queue: new MemoryQueue(),
    apiKeys: new MemoryApiKeys(),
    connections: new MemoryConnections(),
    subscriptions: new MemorySubscriptions(),
    notifier: new RecordingNotifier(),
    invoker: new ScriptedInvoker(),
    clock: fixedClock(),
    ids: sequentialIds(),
    logger: silentLogger,
    outstanding: new Map<string, number>(),
  };
}

/** A connection of tenant acme, for subscribing in tests. */
export function connectionOf(connectionId: string, tenant = "acme"): Connection {
  return { connection_id: connectionId, tenant, connected_at: "2026-11-27T12:00:00.000Z", expires_at: 1_900_000_000 };
}

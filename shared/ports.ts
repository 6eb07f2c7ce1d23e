import type { ComponentDrift } from "./core/component-drift.ts";
import type { JobFailure, JobMessage, JobRecord, JobResult, JobStatus } from "./core/jobs.ts";
import type { JobBreakdown } from "./core/job-breakdown.ts";
import type { Progress } from "./core/continuation.ts";
import type { Component } from "./core/routes.ts";
import type { GenerationInput, GenerationOutput } from "./core/engine-codec.ts";
import type { ServerEvent } from "./core/events.ts";
import type { ApiKeyRecord, Principal } from "./core/api-keys.ts";
import type { BatchRecord, RequestCounts } from "./core/batches.ts";
import type { BatchControlMessage } from "./core/batch-control.ts";
import type { BatchChange, OpenAIBatchStatus } from "./core/openai-batches.ts";
import type { TenantQuota } from "./core/quotas.ts";
import type { Page, PageRequest } from "./core/paging.ts";
import type { RouteSettings } from "./core/route-settings.ts";
import type { Load } from "./core/gpu-batch-policy.ts";
import type { WebhookEndpoint } from "./core/webhooks.ts";
import type { Lane } from "./core/lanes.ts";
import type { ComponentReading, FinishedJob, QueueDepth } from "./core/metrics.ts";
import type { BoardReport, LaneCounts, QueueBoard, RateWindow, SentEstimate, StartRate } from "./core/queue-position.ts";

/**
 * The narrow interfaces use cases depend on. Adapters in shared/aws implement them over the AWS
 * SDK; unit tests implement them in memory (test/helpers/fakes.ts).
 */
export type Clock = { now(): Date };

/** New ids: `gpuBatch` names the jobs that reach the engines together; `holder`, a batcher in the capacity ledger. */
export type Ids = { job(): string; batch(): string; gpuBatch(): string; holder(): string };

export type { Page, PageRequest } from "./core/paging.ts";

/** Where a job runs: the GPU batch it reaches the engine with, and the component; written on the job when a batcher claims it. */
export type GpuBatchPlacement = { readonly gpu_batch_id: string; readonly gpu_batch_size: number; readonly component: string };

export type JobEnding = { readonly status: "FAILED" | "CANCELLED" | "EXPIRED"; readonly error: JobFailure };

/** What an attempt came to; `breakdown`, where its time and cost went, once it reached the GPU. */
export type JobOutcome = (
  | { readonly status: "SUCCEEDED"; readonly result: JobResult }
  | { readonly status: "FAILED"; readonly error: JobFailure }
) & { readonly breakdown?: JobBreakdown | undefined };

export type JobStore = {
  /** Creates jobs that must not exist yet; a duplicate id is a ConflictError. */
  create(jobs: readonly JobRecord[]): Promise<void>;
  get(jobId: string): Promise<JobRecord | undefined>;
  /**
   * Takes a QUEUED or RUNNING job for a new attempt (attempt + 1, status RUNNING, started_at now;
   * first_claimed_at only on the first claim). Returns the claimed job, or undefined when the job
   * is finished or gone: nothing to run.
   */
  claim(jobId: string, placement: GpuBatchPlacement, at: Date): Promise<JobRecord | undefined>;
  /**
   * Writes the outcome of `attempt` and returns the finished job; undefined when a later attempt
   * or a final state got there first (the write is fenced, so a result is never written twice).
   */
  finish(jobId: string, attempt: number, outcome: JobOutcome, at: Date): Promise<JobRecord | undefined>;
  /**
   * Stores a long generation's text so far at a call boundary (core/continuation.ts), fenced like
   * a finish (only `attempt`, still running) and on the progress it extends (`fromTokens`: the
   * tokens stored before, 0 for none), so that it never goes back. Does not move the job's
   * version: no state changes. False when the fence or the progress refused it.
   */
  saveProgress(jobId: string, attempt: number, progress: Progress, fromTokens: number): Promise<boolean>;
  /**
   * Counts a subscribe on the job (`subscriptions`), after its subscription is stored, and returns
   * the job as it now is (undefined when it does not exist): the read the subscribe makes anyway,
   * so it costs no request more. Does not move the job's version.
   */
  noteSubscribed(jobId: string): Promise<JobRecord | undefined>;
  /**
   * Says why an unfinished job waits (e.g. "warming"); undefined when it has finished. A job the
   * caller had claimed (`claimedAttempt`) goes back to QUEUED, as it waits in the queue again,
   * unless a later attempt holds it meanwhile.
   */
  noteWaiting(jobId: string, reason: string, claimedAttempt?: number): Promise<JobRecord | undefined>;
  /**
   * Ends a job that is not finished yet, whatever its attempt: failed (dead letter, enqueue
   * failure), cancelled by its owner, or expired past its deadline. Returns the ended job, or
   * undefined when it had already finished. A batcher still running it then loses its fence.
   */
  endUnfinished(jobId: string, ending: JobEnding, at: Date): Promise<JobRecord | undefined>;
  listByBatch(batchId: string, page: PageRequest): Promise<Page<JobRecord>>;
  /** A route's jobs created at or after `since`, oldest first; the newest `limit` of them when there are more. */
  listRecentByModel(model: string, since: Date, limit: number): Promise<RecentJob[]>;
};

/** What a trace needs of a job (the jobs table's model-index). */
export type RecentJob = { readonly created_at: string; readonly prompt_tokens: number; readonly max_tokens: number; readonly lane: Lane | undefined };

export type IdempotencyStore = {
  /** Binds (tenant, key) to jobId unless already bound; returns the job id the key is bound to. */
  bind(tenant: string, key: string, jobId: string, expiresAt: number): Promise<string>;
  /** Undoes a binding to jobId (a submission refused after binding), leaving any other alone. */
  unbind(tenant: string, key: string, jobId: string): Promise<void>;
};

export type TenantStore = {
  quotaOf(tenant: string): Promise<TenantQuota | undefined>;
  setQuota(tenant: string, quota: TenantQuota): Promise<void>;
};

/**
 * Counts what tenants hold against their quotas. Charges are conditional (never past the limit);
 * jobs are given back when they reach a terminal state.
 */
/**
 * A job's slot in its tenant's quota: the job, and for a batch's job its batch and line (a batch's
 * slots are kept in chunks of lines, so that giving one back stays a small write).
 */
export type JobSlot = {
  readonly job_id: string;
  readonly batch?: { readonly batch_id: string; readonly line: number } | undefined;
  /** The status a batch's job ended with, given back at its end: its batch counts it there (BatchTally). */
  readonly ended?: JobStatus | undefined;
};

/**
 * A batch's counts by status, kept in its chunks of lines (the quota's) as its jobs start and end:
 * reading them costs one read per 100 lines, never one per job.
 */
export type BatchTally = {
  /** Counts these jobs of batches running; one started again, or ended, is left as it is. */
  started(tenant: string, jobs: readonly JobSlot[]): Promise<void>;
  /** The batch's counts, or undefined for a batch whose chunks were never kept (stored before they were). */
  countsOf(batch: BatchRecord): Promise<RequestCounts | undefined>;
};

/**
 * The tenants' quota counters, exact under retries, lost answers and repeats: every change is
 * keyed by the jobs it is for, so the same change again changes nothing.
 */
export type UsageMeter = {
  /** Takes a slot for each job unless that would pass `limit`; whether it did. The same jobs taken again take nothing more and answer true. */
  takeJobs(tenant: string, jobs: readonly JobSlot[], limit: number): Promise<boolean>;
  /** Gives back these jobs' slots; a slot already given back, or never taken, is left as it is. */
  giveBackJobs(tenant: string, jobs: readonly JobSlot[]): Promise<void>;
  /** The slots the tenant holds now. */
  jobsInFlight(tenant: string): Promise<number>;
  /** Charges tokens to the tenant's minute under `chargeId` unless that would pass `limit`; whether it did. The same charge again charges nothing more and answers true. */
  chargeTokens(tenant: string, minute: number, charge: TokenCharge, limit: number): Promise<boolean>;
  /** Refunds a charge; one refunded already, or never made, is left as it is. */
  refundTokens(tenant: string, minute: number, charge: TokenCharge): Promise<void>;
  /** The tokens charged to the tenant's minute. */
  tokensCharged(tenant: string, minute: number): Promise<number>;
};

/** A holding the slot sweep found without its job (`id`: a job id or `<batch_id>#<chunk>`), and since when. */
export type SuspectHolding = { readonly id: string; readonly sinceMs: number };

/** One tenant's holdings as its counter lists them, and those a slot sweep found without their job. */
export type TenantHoldings = { readonly tenant: string; readonly open: readonly string[]; readonly suspect: readonly SuspectHolding[] };

/**
 * For the slot sweep (app/slot-sweep.ts): every tenant's holdings, and the two steps, a sweep
 * apart, that give back one whose job was never stored (its submit stopped after the take).
 */
export type SlotAudit = {
  holdings(): Promise<readonly TenantHoldings[]>;
  /** Replaces the tenant's suspect holdings. */
  setSuspect(tenant: string, suspect: readonly SuspectHolding[]): Promise<void>;
  /** Gives back the holding and all its slots if it is still held and still this very suspect; whether it did. */
  giveBackSuspect(tenant: string, suspect: SuspectHolding): Promise<boolean>;
  /** A batch chunk's lines still held, and when it was taken (epoch ms); undefined for one not kept. */
  heldLines(tenant: string, holdingId: string): Promise<HeldChunk | undefined>;
};

export type HeldChunk = { readonly lines: readonly number[]; readonly takenAtMs: number };

/** Tokens charged for one submission, named by it (a job id) so that a repeat is recognised. */
export type TokenCharge = { readonly id: string; readonly tokens: number };

export type BatchStore = {
  create(batch: BatchRecord): Promise<void>;
  get(batchId: string): Promise<BatchRecord | undefined>;
  /** Newest first; `after` (a batch id of the tenant) starts after that batch, as OpenAI's list does. */
  listByTenant(tenant: string, page: PageRequest & { readonly after?: string | undefined }): Promise<Page<BatchRecord>>;
  /**
   * Moves an OpenAI batch to `change.status` if its status is one of `from` (a conditional write):
   * the batch after, or undefined when it was elsewhere (another step moved it first) or is gone.
   */
  transition(batchId: string, from: readonly OpenAIBatchStatus[], change: BatchChange): Promise<BatchRecord | undefined>;
  /** Open OpenAI batches whose sweep_at is at or before `now` (epoch seconds), soonest first: the sweep's work. */
  listDue(now: number, limit: number): Promise<readonly BatchRecord[]>;
  /** Takes a JSON-lines batch out of the sweep's index: its every job was queued (or ended). A no-op for any other. */
  markQueued(batchId: string): Promise<void>;
};

/** The steps of an OpenAI batch that run outside the HTTP request (core/batch-control.ts), on their own queue. */
export type BatchControlQueue = { send(message: BatchControlMessage): Promise<void> };

/** A message the batcher took from a queue itself (topping up its delivery), and the lane whose queue holds it. */
export type ReceivedMessage = { readonly messageId: string; readonly receiptHandle: string; readonly body: string; readonly lane: Lane };

/**
 * A route's queues, one per lane (shared/core/lanes.ts). `lane` left out is the batch lane, the
 * route's queue from before lanes. A message is deleted, released or requeued in the lane it was
 * received from: its receipt handle means nothing to the other queue.
 */
export type JobQueue = {
  /** Sends the messages to the route's lane; resolves once SQS has stored every one. */
  enqueue(route: string, messages: readonly JobMessage[], lane?: Lane): Promise<void>;
  /** Takes up to `max` (at most 10) messages of the lane, waiting up to `waitSeconds` for the first. */
  receive(route: string, max: number, waitSeconds: number, lane?: Lane): Promise<readonly ReceivedMessage[]>;
  /** Deletes a message whose job is durable in its final state. */
  delete(route: string, receiptHandle: string, lane?: Lane): Promise<void>;
  /** Makes a message visible again after `delaySeconds` (a retry with backoff). */
  release(route: string, receiptHandle: string, delaySeconds: number, lane?: Lane): Promise<void>;
  /**
   * Puts a message back as a new one in its lane after `delaySeconds` and deletes the original: for
   * work the batcher could not start, which must not count as a failed delivery toward the DLQ.
   */
  requeue(route: string, message: { readonly body: string; readonly receiptHandle: string; readonly lane?: Lane | undefined }, delaySeconds: number): Promise<void>;
};

/**
 * Work held on each component by the batchers running now, so that concurrent batchers share the
 * copies' room instead of each assuming it all. A batcher that dies leaves an entry that expires.
 */
/** What a batcher holds on a component, and since when (it got it) its oldest job has waited for room there. */
export type LedgerEntry = {
  readonly load: Load;
  readonly oldestWaitingMs?: number | undefined;
  /** One of the jobs it holds waiting for room came from the interactive lane: batch-lane holders yield to it at once. */
  readonly interactiveWaiting?: boolean | undefined;
  /** The part of `load` that interactive-lane jobs hold: while any is held the batch lane is capped (batch-lane-cap.ts). */
  readonly interactiveLoad?: Load | undefined;
  /** When the holder last saw interactive work on the component: a batcher started since remembers it too. */
  readonly interactiveSeenMs?: number | undefined;
  /** Until when it pulls more from the route's queues (decideNext's topUpDeadline). */
  readonly topUpUntilMs?: number | undefined;
};

/** What a batcher reads of a component's ledger: the others' load and waits, and the jobs cancelled there. */
export type LedgerView = {
  readonly load: Load;
  readonly oldestWaitingMs: number | undefined;
  /** Whether another holder has an interactive-lane job waiting for room there. */
  readonly interactiveWaiting: boolean;
  /** The part of `load` the other holders' interactive-lane jobs hold. */
  readonly interactiveLoad: Load;
  /** The latest time any other holder says it saw interactive work there (undefined when none says). */
  readonly interactiveSeenMs: number | undefined;
  /** The latest any other holder pulls from the route's queues until (undefined when none says). */
  readonly topUpUntilMs: number | undefined;
  /** Jobs running on the component that were cancelled: their calls are to be aborted. Not load. */
  readonly cancelled: readonly string[];
  /** The other holders with a job waiting for room there: they share the room under the batch lane's cap with this one. */
  readonly waitingHolders: readonly string[];
  /** The component's drift from its latency profile as a batcher last stored it (core/component-drift.ts), read with the holders. */
  readonly drift?: ComponentDrift | undefined;
};

export type CapacityLedger = {
  /**
   * The load of every live holder of the component except `holder`, since when the oldest job
   * any of them holds has waited for room (undefined when none waits), and the live cancel marks.
   */
  others(component: string, holder: string, now: Date): Promise<LedgerView>;
  /** Publishes the holder's entry; nothing held and nothing waiting removes it. */
  publish(component: string, holder: string, entry: LedgerEntry, expiresAt: Date): Promise<void>;
  /**
   * Marks a job running on the component as cancelled, until `expiresAt`: the batcher running it
   * reads the ledger anyway, so it learns of the cancel with no request of its own.
   */
  markCancelled(component: string, jobId: string, expiresAt: Date): Promise<void>;
  /** Removes a cancel mark once its call is aborted, so that reads stop carrying it until DynamoDB's TTL deletes it. */
  clearCancelled(component: string, jobId: string): Promise<void>;
  /** Stores the component's drift from its profile for the batchers after this one, until `expiresAt`; the last store wins. */
  saveDrift(component: string, drift: ComponentDrift, expiresAt: Date): Promise<void>;
  /** The component's stored drift, alone (GET /v1/metrics): one small read. */
  drift(component: string, now: Date): Promise<ComponentDrift | undefined>;
};

export type RouteSettingsStore = {
  /** What was stored: settings stored before a knob existed lack it (effectiveRouteSettings gives its default). */
  get(route: string): Promise<Partial<RouteSettings> | undefined>;
  put(route: string, settings: RouteSettings, updatedAt: Date): Promise<void>;
};

/** Waits `ms`, or less when `wake` resolves first. */
export type Sleep = (ms: number, wake?: Promise<void>) => Promise<void>;

export type ApiKeyStore = {
  principalOf(keyHash: string): Promise<Principal | undefined>;
  /** Every key record of a tenant (hashes only: keys themselves are never stored). */
  listByTenant(tenant: string): Promise<readonly ApiKeyRecord[]>;
  put(record: ApiKeyRecord): Promise<void>;
  delete(keyHash: string): Promise<void>;
};

/** One-time, short-lived tickets for opening a WebSocket without putting an API key in the URL. */
export type TicketStore = {
  put(ticketHash: string, principal: Principal, expiresAt: Date): Promise<void>;
  /** Takes the ticket (it works once): its principal, or undefined when unknown, used or expired. */
  take(ticketHash: string, now: Date): Promise<Principal | undefined>;
};

export type Connection = { readonly connection_id: string; readonly tenant: string; readonly connected_at: string; readonly expires_at: number };

export type ConnectionStore = {
  put(connection: Connection): Promise<void>;
  get(connectionId: string): Promise<Connection | undefined>;
  delete(connectionId: string): Promise<void>;
};

/** A topic is `job#<id>` or `batch#<id>`. */
export type SubscriptionStore = {
  /** Subscribes a connection to a topic; the subscription carries the tenant and expiry of its connection. */
  subscribe(topic: string, connection: Connection): Promise<void>;
  subscribers(topic: string): Promise<readonly string[]>;
  removeConnection(connectionId: string): Promise<void>;
};

/** Pushes an event to one WebSocket connection; throws ConnectionGoneError for a closed one. */
export type Notifier = { post(connectionId: string, event: ServerEvent): Promise<void> };

/** A client watching a waiting job: who to tell of its place in line, and what it was told last. */
export type QueueWatch = {
  readonly jobId: string;
  readonly lane: Lane;
  readonly ticket: number;
  /** The job's size, for its estimate without a read of the job. */
  readonly promptTokens: number;
  readonly maxTokens: number;
  /** The job's version while it waits, for its `job.waiting` without a read of the job; absent on a watch from before. */
  readonly version?: number | undefined;
  readonly connections: readonly string[];
  readonly lastSent?: SentEstimate | undefined;
};

/** A route's place-in-line counters (core/queue-position.ts) and its watched waiting jobs. */
export type QueueBoardStore = {
  read(route: string): Promise<QueueBoard>;
  /** Hands out `count` tickets in the lane; the board after: its `submitted[lane]` is the last of them. */
  takeTickets(route: string, lane: Lane, count: number): Promise<QueueBoard>;
  /**
   * Counts jobs that left the queue, notes the copies' service as the caller sees it, whether
   * jobs wait for room and, if it measured any, how its static batches ran against the latency
   * model; the board after.
   */
  depart(route: string, departed: LaneCounts, report: BoardReport): Promise<QueueBoard>;
  /**
   * Counts every ticket of a lane found empty as gone from it (departed = submitted), if the lane
   * still counts `submitted` tickets: tickets that never became a queued job (a submit killed or
   * failed after taking them) stop counting ahead of later jobs. Whether it changed the board.
   */
  settleLane(route: string, lane: Lane, submitted: number): Promise<boolean>;
  /** Starts the next start-rate window and keeps the closed one's rate, unless another caller closed it first. */
  closeRateWindow(route: string, closing: RateWindow | undefined, rate: StartRate | undefined, next: RateWindow): Promise<void>;
  /** Adds a connection to a waiting job's watchers until `expiresAt`; `told`: the estimate it was just sent, and when. */
  watch(route: string, watch: Omit<QueueWatch, "connections" | "lastSent">, connectionId: string, expiresAt: Date, told?: { readonly sent: SentEstimate; readonly at: Date }): Promise<void>;
  /** Tells the batchers that a job of the route may be watched until then: they look for watches until it passes. */
  flagWatched(route: string, until: Date): Promise<void>;
  watches(route: string): Promise<readonly QueueWatch[]>;
  /** Records what a job's watchers are about to be told; false if they were told less than `minGapMs` ago (by another batcher). */
  noteSent(route: string, jobId: string, sent: SentEstimate, now: Date, minGapMs: number): Promise<boolean>;
  unwatch(route: string, jobIds: readonly string[]): Promise<void>;
  /** A watched job's state moved on while it waits (noted waiting for a warming component): its watchers' next events carry `version`. No-op for a job nobody watches or a lower version. */
  rewatchAt(route: string, jobId: string, version: number): Promise<void>;
};


/** A file's metadata (docs/openai-compatible.md); its bytes are in the BlobStore under `storage_key`. */
export type FileRecord = {
  readonly file_id: string;
  readonly tenant: string;
  readonly filename: string;
  readonly purpose: "batch" | "batch_output";
  readonly bytes: number;
  /** Epoch seconds, as OpenAI's file object has it. */
  readonly created_at: number;
  readonly storage_key: string;
  /** Epoch seconds: DynamoDB's TTL deletes the record then (the bytes by the bucket's lifecycle). */
  readonly expires_at?: number | undefined;
};

/** Files' metadata, per tenant (DynamoDB). */
export type FileStore = {
  create(file: FileRecord): Promise<void>;
  get(fileId: string): Promise<FileRecord | undefined>;
  /** The tenant's files, newest first (OpenAI's default order), after the file `after` if given. */
  listByTenant(tenant: string, options: { readonly limit: number; readonly after?: string | undefined; readonly purpose?: string | undefined; readonly order?: "asc" | "desc" | undefined }): Promise<{ readonly items: readonly FileRecord[]; readonly hasMore: boolean }>;
  delete(fileId: string): Promise<void>;
};

/** Bytes by key (S3). */
export type BlobStore = {
  put(key: string, body: Uint8Array | string, contentType: string): Promise<void>;
  /** The object's bytes; undefined when there is none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** The object's size in bytes; undefined when there is none. */
  size(key: string): Promise<number | undefined>;
  delete(key: string): Promise<void>;
  /** A URL that takes one PUT of the object's bytes until `expiresInSeconds` from now. */
  presignPut(key: string, expiresInSeconds: number, contentType: string): Promise<string>;
  /** A URL that GETs the object until `expiresInSeconds` from now (content too big for a Lambda response). */
  presignGet(key: string, expiresInSeconds: number, contentType: string): Promise<string>;
};

/**
 * An upload in progress (POST /v1/uploads): the client PUTs the bytes to S3 under `storage_key`,
 * then completes it, which checks the size and makes it a file.
 */
export type UploadRecord = {
  readonly upload_id: string;
  readonly tenant: string;
  readonly filename: string;
  readonly purpose: "batch";
  readonly bytes: number;
  readonly mime_type: string;
  /** Epoch seconds. */
  readonly created_at: number;
  /** Epoch seconds: the presigned PUT's end; DynamoDB's TTL deletes the record after it. */
  readonly expires_at: number;
  readonly storage_key: string;
  readonly status: "pending" | "completed";
  /** The file it becomes: chosen at creation, so that the bytes are PUT under the file's own key. */
  readonly file_id: string;
};

/** Uploads in progress, per tenant (DynamoDB, in the files table). */
export type UploadStore = {
  create(upload: UploadRecord): Promise<void>;
  get(uploadId: string): Promise<UploadRecord | undefined>;
  /** Marks the upload completed (again: no harm). */
  complete(uploadId: string): Promise<void>;
};

/** An event for a tenant's webhook endpoints (docs/openai-compatible.md): queued, delivered by its own function. */
export type WebhookEvent = {
  readonly id: string;
  readonly tenant: string;
  readonly type: "batch.completed" | "batch.failed" | "batch.expired" | "batch.cancelled";
  /** Epoch seconds. */
  readonly created_at: number;
  readonly data: { readonly id: string };
};

/** Where events for webhooks are put; never waits for their delivery. */
export type WebhookOutbox = { enqueue(events: readonly WebhookEvent[]): Promise<void> };

/** A tenant's webhook endpoints (DynamoDB), at most a handful each. */
export type WebhookEndpointStore = {
  /** Stores the endpoint unless its tenant has `limit` already; whether it did. */
  create(endpoint: WebhookEndpoint, limit: number): Promise<boolean>;
  listByTenant(tenant: string): Promise<readonly WebhookEndpoint[]>;
  /** Whether there was such an endpoint of the tenant. */
  delete(tenant: string, endpointId: string): Promise<boolean>;
};

/** What the delivery function does with the webhooks queue besides reading it (its event source mapping does that). */
export type WebhookRetryQueue = {
  /** One message per endpoint whose first attempt failed, first received after `delaySeconds` (at most 900). */
  enqueueDeliveries(deliveries: readonly { readonly event: WebhookEvent; readonly endpointId: string }[], delaySeconds: number): Promise<void>;
  /** Hides a received message for `seconds` (at most 12 h): the next attempt's backoff. */
  retryLater(receiptHandle: string, seconds: number): Promise<void>;
};

/** An HTTP answer to a delivery, or why there was none. */
export type WebhookPostResult = { readonly status: number } | { readonly error: string };

/** POSTs one signed delivery; never throws for the receiver's failure (that is a result). */
export type WebhookTransport = { post(url: string, headers: Readonly<Record<string, string>>, body: string, timeoutMs: number): Promise<WebhookPostResult> };

/**
 * A component's copies: those in service now (CurrentCopyCount), and those its autoscaling asked
 * for, starting ones included (DesiredCopyCount).
 */
export type CopyCount = { readonly current: number; readonly desired: number };

/**
 * How many copies each inference component runs now (DescribeInferenceComponent's RuntimeConfig):
 * autoscaling changes them, so the batcher sizes its work on what runs, not on routes.yml.
 */
export type FleetView = { copies(component: Component): Promise<CopyCount> };

/** A call's options: `signal` gives the call up, which then rejects with the signal's reason. */
export type InvokeOptions = { readonly signal?: AbortSignal | undefined };

/**
 * Runs prompts on an inference component. One call per prompt for rolling-batch engines (they
 * batch inside the container), one call with the list for dynamic-batch engines. Each prompt
 * settles on its own: a prompt the model rejects fails alone.
 */
export type Invoker = {
  invoke(component: Component, requests: readonly GenerationInput[], options?: InvokeOptions): Promise<readonly PromiseSettledResult<GenerationOutput>[]>;
  /**
   * Runs one prompt as a stream (rolling-batch and vLLM engines only): `onText` gets each token's
   * text as the engine sends it; resolves with the whole generation. An error mid-stream rejects,
   * translated as any failed call is.
   */
  invokeStream(component: Component, request: GenerationInput, onText: (text: string) => void, options?: InvokeOptions): Promise<GenerationOutput>;
};

/** A queue's gauges for GET /v1/metrics: SQS's in both stacks; its oldest message's age from CloudWatch in AWS, from fauxqs locally. */
export type QueueMetrics = {
  depth(queueName: string): Promise<QueueDepth>;
  /** Seconds since the oldest message still in the queue was sent; undefined when it is empty (or the source has no datapoint). */
  oldestMessageAgeSeconds(queueName: string, now: Date): Promise<number | undefined>;
};

/** An inference component's copies and load over the last `windowMs`: CloudWatch and DescribeInferenceComponent in AWS, the emulator's stats locally. */
export type EngineMetrics = { read(component: Component, now: Date, windowMs: number): Promise<ComponentReading> };

/** Jobs of a route that finished since a time, newest first, at most `limit` (a sparse index on the jobs table). */
export type FinishedJobIndex = {
  finishedSince(route: string, since: Date, limit: number): Promise<{ readonly jobs: readonly FinishedJob[]; readonly truncated: boolean }>;
};

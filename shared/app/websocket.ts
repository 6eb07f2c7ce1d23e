import type { BatchControlDeps } from "./batch-progress.ts";
import { z } from "zod";
import { hashApiKey, type Principal } from "../core/api-keys.ts";
import { BatchlineError, ConnectionGoneError, RetryableError, UnauthorizedError, ValidationError } from "../core/errors.ts";
import { batchTopic, jobEvent, jobTopic, type ServerEvent } from "../core/events.ts";
import { isTerminal, toJobView, type JobRecord } from "../core/jobs.ts";
import { toValidationError } from "../core/submission.ts";
import type { ApiKeyStore, CapacityLedger, Clock, Connection, ConnectionStore, Notifier, SubscriptionStore, TicketStore } from "../ports.ts";
import { authenticate } from "./auth.ts";
import type { Logger } from "./logger.ts";
import { cancelBatch, cancelJobs } from "./cancel.ts";
import { batchCounts, getBatch, getJob, subscribedJob, type QueryDeps } from "./queries.ts";
import { retryWhileUnavailable } from "./store-retry.ts";
import { submitJob, type SubmitDeps } from "./submit.ts";
import { boardsOf, watchWaiting, type WaitingDeps } from "./waiting.ts";

/** Connections and subscriptions live a day at most; API Gateway closes sockets after 2 hours. */
const CONNECTION_TTL_SECONDS = 24 * 3600;

export type WebSocketDeps = SubmitDeps & QueryDeps & WaitingDeps & BatchControlDeps & {
  readonly apiKeys: ApiKeyStore;
  readonly tickets: TicketStore;
  readonly connections: ConnectionStore;
  readonly subscriptions: SubscriptionStore;
  readonly notifier: Notifier;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where a cancel of a running job is marked for its batcher. */
  readonly ledger: CapacityLedger;
};

/** How a client proves who it is on connect: a one-time ticket (preferred) or its API key. */
export type ConnectCredentials = { readonly ticket?: string | undefined; readonly token?: string | undefined };

export async function connect(deps: Pick<WebSocketDeps, "apiKeys" | "tickets" | "connections" | "clock">, connectionId: string, credentials: ConnectCredentials): Promise<Connection> {
  const { tenant } = credentials.ticket !== undefined ? await redeemTicket(deps, credentials.ticket) : await authenticate(deps.apiKeys, credentials.token);
  const now = deps.clock.now();
  const connection = { connection_id: connectionId, tenant, connected_at: now.toISOString(), expires_at: expiresAt(now) };
  await deps.connections.put(connection);
  return connection;
}

async function redeemTicket(deps: Pick<WebSocketDeps, "tickets" | "clock">, ticket: string): Promise<Principal> {
  const principal = await deps.tickets.take(hashApiKey(ticket), deps.clock.now());
  if (!principal) throw new UnauthorizedError("invalid, used or expired WebSocket ticket: ask POST /v1/ws-tickets for a new one");
  return principal;
}

export async function disconnect(deps: Pick<WebSocketDeps, "connections" | "subscriptions">, connectionId: string): Promise<void> {
  await Promise.all([deps.subscriptions.removeConnection(connectionId), deps.connections.delete(connectionId)]);
}

const clientMessageSchema = z.discriminatedUnion("action", [
  z.strictObject({
    action: z.literal("subscribe"),
    job_ids: z.array(z.string().min(1)).min(1, "must not be empty").max(100, "at most 100 jobs per subscribe").optional(),
    batch_id: z.string().min(1).optional(),
    request_id: z.string().max(128).optional(),
  }),
  z.strictObject({ action: z.literal("submit"), job: z.unknown(), request_id: z.string().max(128).optional() }),
  z.strictObject({
    action: z.literal("cancel"),
    job_ids: z.array(z.string().min(1)).min(1, "must not be empty").max(100, "at most 100 jobs per cancel").optional(),
    batch_id: z.string().min(1).optional(),
    request_id: z.string().max(128).optional(),
  }),
], { error: (issue) => (issue.code === "invalid_union" ? 'must be "subscribe", "submit" or "cancel"' : undefined) });

/**
 * Handles one client frame and answers on the same connection. Bad frames get an `error` event
 * naming the problem; the connection stays open.
 */
export async function handleClientMessage(deps: WebSocketDeps, connectionId: string, frame: string): Promise<void> {
  const reply = (event: ServerEvent) => deps.notifier.post(connectionId, event);
  let requestId: string | undefined;
  try {
    const connection = await deps.connections.get(connectionId);
    if (!connection) throw new ValidationError("unknown connection: reconnect");
    const message = parseFrame(frame);
    requestId = message.request_id;
    if (message.action === "submit") {
      // Counted as subscribed from its creation: a batcher claiming it before the subscription is
      // stored looks its subscribers up (and finds the sender once it is), as before the count.
      const { job, created, queue, board } = await submitJob(deps, connection.tenant, message.job, { subscribing: true });
      // The answer goes before the subscription: once subscribed, a batcher's job.running may be
      // posted at any moment, and the answer (the job as stored) must not arrive after it.
      await reply(jobEvent(toJobView(job, queue), requestId));
      // Accepted and answered: its subscription and the check for an end meanwhile are tried
      // again while the store is down. If they still fail, the error that follows the job event
      // with the same request id tells the client to subscribe to the job (README, WebSocket).
      const subscribed = retryWhileUnavailable(deps.sleep, () => deps.subscriptions.subscribe(jobTopic(job.job_id), connection), SUBSCRIBE_RETRY_DELAYS_MS);
      await Promise.all([subscribed.catch(unsubscribedError(job.job_id)), watchWaiting(deps, connection, [job], new Map(board ? [[job.model, board]] : []))]);
      // A job created by another submit (the same idempotency key) had no count for this one: it counts it now.
      const read = created ? getJob : subscribedJob;
      await retryWhileUnavailable(deps.sleep, () => sendIfFinished(read(deps, connection.tenant, job.job_id), reply), SUBSCRIBE_RETRY_DELAYS_MS).catch(unsubscribedError(job.job_id));
      return;
    }
    if ((message.job_ids === undefined) === (message.batch_id === undefined)) {
      throw new ValidationError(`${message.action}: give exactly one of job_ids or batch_id`, "job_ids");
    }
    if (message.action === "cancel") {
      // The cancelled jobs' subscribers (the sender among them, if subscribed) get job.cancelled.
      if (message.batch_id !== undefined) await cancelBatch(deps, connection.tenant, message.batch_id);
      else await cancelJobs(deps, connection.tenant, message.job_ids ?? [], "over the WebSocket");
      return;
    }
    if (message.batch_id !== undefined) {
      const batch = await getBatch(deps, connection.tenant, message.batch_id);
      await deps.subscriptions.subscribe(batchTopic(batch.batch_id), connection);
      await reply({ type: "subscribed", job_ids: [], batch_id: batch.batch_id });
      await reply({ type: "batch.progress", batch_id: batch.batch_id, request_counts: await batchCounts(deps, batch) });
      return;
    }
    const jobIds = [...new Set(message.job_ids)];
    // Check every job first so a foreign id subscribes to nothing.
    await Promise.all(jobIds.map((id) => getJob(deps, connection.tenant, id)));
    await Promise.all(jobIds.map((id) => deps.subscriptions.subscribe(jobTopic(id), connection)));
    // Read after subscribing: a job finishing in between is then seen by one path or both, never
    // neither. Read before answering: a read that fails is an error the client answers by asking
    // again, whereas after "subscribed" it would leave finished jobs untold with nothing to retry.
    // The read is the count of the subscribe on the job, which its next events' writes answer
    // with: a batcher looks the job's subscribers up only once there are some (core/subscriber-lookup.ts).
    const jobs = await Promise.all(jobIds.map((id) => subscribedJob(deps, connection.tenant, id)));
    const waiting = await watchWaiting(deps, connection, jobs, await boardsOf(deps, jobs));
    await reply({ type: "subscribed", job_ids: jobIds });
    await Promise.all(
      jobs.map((job) => {
        if (isTerminal(job.status)) return reply(jobEvent(toJobView(job)));
        const event = waiting.get(job.job_id);
        return event ? reply(event) : undefined;
      }),
    );
  } catch (error) {
    if (error instanceof ConnectionGoneError) {
      // The client left while being answered: nobody to tell, and nothing of its to keep.
      await deps.subscriptions.removeConnection(connectionId);
      return;
    }
    if (!(error instanceof BatchlineError)) throw error;
    const field = error instanceof ValidationError ? error.field : undefined;
    await reply({ type: "error", error: { code: error.code, message: error.message, field }, request_id: requestId });
  }
}

/** 7.5 s in all: after a submit's own tries (up to 15.5 s), inside the function's 29 s. */
const SUBSCRIBE_RETRY_DELAYS_MS = [500, 1_000, 2_000, 4_000];

/** A submitted job's subscription that could not be stored (or its end checked): the client is to subscribe to it. */
const unsubscribedError = (jobId: string) => (error: unknown) => {
  if (!(error instanceof RetryableError)) throw error;
  throw new RetryableError("unavailable", `job ${jobId} was accepted, but subscribing to it failed (${error.message}): subscribe to it`, error);
};

function parseFrame(frame: string): z.infer<typeof clientMessageSchema> {
  let raw: unknown;
  try {
    raw = JSON.parse(frame);
  } catch {
    throw new ValidationError('message is not valid JSON; send {"action": "subscribe" | "submit" | "cancel", ...}');
  }
  const parsed = clientMessageSchema.safeParse(raw);
  if (!parsed.success) throw toValidationError(parsed.error);
  return parsed.data;
}

async function sendIfFinished(read: Promise<JobRecord>, reply: (e: ServerEvent) => Promise<void>): Promise<void> {
  const job = await read;
  if (isTerminal(job.status)) await reply(jobEvent(toJobView(job)));
}

function expiresAt(now: Date): number {
  return Math.floor(now.getTime() / 1000) + CONNECTION_TTL_SECONDS;
}

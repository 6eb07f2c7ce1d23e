import { mkdir } from "node:fs/promises";
import type { DatabaseSync } from "node:sqlite";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { buildApp, type BuildAppOptions } from "fauxqs";
import { presignedRefusal } from "./s3-presigned-expiry.ts";
import { LOCAL_ACCOUNT_ID, LOCAL_REGION, localClientConfig } from "./aws.ts";
import { fauxqsRequest, type RequestMeter } from "./request-meter.ts";

export type LocalSqs = {
  readonly url: string;
  readonly port: number;
  /**
   * Ends every long poll now (each returns what is there, often nothing). Lets pollers stop at
   * once instead of waiting up to 20 s for their ReceiveMessage to come back.
   */
  wakeReceivers(): void;
  close(): Promise<void>;
};

export type LocalSqsOptions = {
  readonly port?: number;
  readonly host?: string;
  /** SQLite persistence under this folder; undefined keeps everything in memory. */
  readonly dataDir?: string | undefined;
  /** Counts every SQS and S3 request it serves. */
  readonly meter?: RequestMeter | undefined;
};

type Stores = NonNullable<BuildAppOptions["stores"]>;
type Persistence = NonNullable<Stores["sqsStore"]["persistence"]>;

/**
 * fauxqs on 127.0.0.1, optionally persisted. `startFauxqs()` persists but always listens on
 * 0.0.0.0, and `buildApp()` ignores `dataDir`, so this wires the stores by hand as startFauxqs
 * does internally. Those classes are not in fauxqs's `exports`: package.json pins fauxqs 2.4.1.
 * We build the stores even without persistence, to keep a handle for `wakeReceivers`.
 */
export async function startLocalSqs(options: LocalSqsOptions = {}): Promise<LocalSqs> {
  const base = import.meta.resolve("fauxqs");
  const load = (path: string) => import(new URL(path, base).href);
  const [{ SqsStore, SqsQueue }, { SnsStore }, { S3Store }] = await Promise.all([
    load("./sqs/sqsStore.js"),
    load("./sns/snsStore.js"),
    load("./s3/s3Store.js"),
  ]);
  const stores: Stores = { sqsStore: new SqsStore(), snsStore: new SnsStore(), s3Store: new S3Store() };
  wakeOneWaiterPerMessage(SqsQueue);

  let persistence: Persistence | undefined;
  if (options.dataDir !== undefined) {
    await mkdir(options.dataDir, { recursive: true });
    const { PersistenceManager } = await load("./persistence.js");
    persistence = new PersistenceManager(options.dataDir) as Persistence;
    keepReceiveCountOnRelease(persistence);
    // Load before attaching, or loading would write every row back.
    persistence.load(stores.sqsStore, stores.snsStore, stores.s3Store);
    stores.sqsStore.persistence = persistence;
    stores.snsStore.persistence = persistence;
    stores.s3Store.persistence = persistence;
    for (const queue of stores.sqsStore.allQueues()) queue.persistence = persistence;
  }

  const app = buildApp({ logger: false, stores });
  app.addHook("onRequest", async (request, reply) => {
    const refusal = presignedRefusal(new URL(request.url, "http://local").searchParams, new Date());
    if (refusal) return reply.code(refusal.status).header("content-type", refusal.contentType).send(refusal.body);
  });
  const meter = options.meter;
  if (meter) {
    app.addHook("onRequest", async (request) => {
      const target = request.headers["x-amz-target"];
      const counted = fauxqsRequest(request.method, request.url, typeof target === "string" ? target : undefined);
      if (counted) meter.request(counted.service, counted.action);
    });
  }
  if (persistence) {
    const opened = persistence;
    app.addHook("onClose", async () => opened.close());
  }
  await app.listen({ port: options.port ?? 0, host: options.host ?? "127.0.0.1" });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("fauxqs did not bind a TCP port");
  return {
    url: `http://${options.host ?? "127.0.0.1"}:${address.port}`,
    port: address.port,
    wakeReceivers: () => stores.sqsStore.shutdown(),
    close: () => app.close(),
  };
}

type WaitingQueue = { pollWaiters: { resolve(): void; timer: ReturnType<typeof setTimeout> }[]; receiving?: boolean };
type QueuePrototype = Record<"notifyWaiters" | "dequeue" | "dequeueFifo", (this: WaitingQueue, ...args: unknown[]) => unknown>;

/**
 * A long poll comes back before its WaitTimeSeconds only with a message, as SQS's does. fauxqs
 * 2.4.1 wakes every ReceiveMessage waiting on a queue for each message that becomes visible, and
 * all but the one that takes it come back empty at once. A batcher that gets an empty answer
 * stays off the lane for a second (shared/core/batcher-decision.ts, EMPTY_LANE_BACKOFF_MS), and
 * every early empty answer was a ReceiveMessage that AWS would not have made. Now each message
 * wakes one waiter (fauxqs calls this once per message sent, and every 20 ms while messages it
 * moved back are visible), not while a receive is taking messages (its own look at the timers
 * would wake another for the message it is about to take), and the others go on waiting.
 * Patched on the class, as `keepReceiveCountOnRelease` patches the persistence: package.json
 * pins fauxqs 2.4.1.
 */
function wakeOneWaiterPerMessage(queueClass: { prototype: unknown }): void {
  const proto = queueClass.prototype as QueuePrototype;
  proto.notifyWaiters = function () {
    if (this.receiving) return;
    const waiter = this.pollWaiters.shift();
    if (!waiter) return;
    clearTimeout(waiter.timer);
    waiter.resolve();
  };
  for (const name of ["dequeue", "dequeueFifo"] as const) {
    const take = proto[name];
    proto[name] = function (...args) {
      this.receiving = true;
      try {
        return take.apply(this, args);
      } finally {
        this.receiving = false;
      }
    };
  }
}

/**
 * fauxqs 2.4.1 persists "visible again" (ChangeMessageVisibility to 0) by writing NULL into the
 * NOT NULL receive count: the call fails with a 500, after the message has already left the
 * in-flight set in memory. This writes only what changes.
 */
function keepReceiveCountOnRelease(persistence: Persistence): void {
  const { db } = persistence as unknown as { db: DatabaseSync };
  const ready = db.prepare("UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?");
  persistence.updateMessageReady = (messageId: string) => {
    ready.run(messageId);
  };
}

/** The ARN fauxqs gives a queue created by a client in LOCAL_REGION. */
export function localQueueArn(queueName: string): string {
  return `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:${queueName}`;
}

/**
 * Always with an explicit endpoint: fauxqs's queue URLs name a host that does not resolve, and
 * the SDK would otherwise send each call to the queue URL's host.
 */
/**
 * Sockets of the stack's SQS client. Every poller of every mapping holds one for its 20 s long
 * poll: past the SDK's default of 50 (the stack has 52 pollers since the webhooks queue came), a
 * ReceiveMessage waited for another's long poll to end, and jobs sat in their queue up to 20 s on
 * an idle stack.
 */
export const LOCAL_SQS_SOCKETS = 1024;

export function localSqsClient(endpoint: string): SQSClient {
  return new SQSClient({ ...localClientConfig(endpoint), useQueueUrlAsEndpoint: false, requestHandler: { httpAgent: { keepAlive: true, maxSockets: LOCAL_SQS_SOCKETS } } });
}

/** fauxqs's S3, on the same endpoint as its SQS; path-style, as 127.0.0.1 has no bucket subdomains. */
export function localS3Client(endpoint: string): S3Client {
  return new S3Client({ ...localClientConfig(endpoint), forcePathStyle: true });
}

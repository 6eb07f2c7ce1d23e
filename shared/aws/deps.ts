import { randomUUID } from "node:crypto";
import type { Config } from "../config.ts";
import type {
  ApiKeyStore, BatchControlQueue, BatchStore, BlobStore, CapacityLedger, Clock, ConnectionStore, FileStore, IdempotencyStore, Ids, FleetView, Invoker, JobQueue, JobStore, Notifier,
  QueueBoardStore, RouteSettingsStore, Sleep, SubscriptionStore, TenantStore, TicketStore, UploadStore, UsageMeter, BatchTally, SlotAudit, WebhookEndpointStore, WebhookOutbox, WebhookRetryQueue,
  WebhookTransport,
} from "../ports.ts";
import { fetchWebhookTransport } from "../webhook-fetch.ts";
import { CoalescedLineSlots } from "../app/line-slots.ts";
import { QuotaReleasingJobStore } from "../app/quotas.ts";
import { sleep } from "../sleep.ts";
import type { RouteCatalog } from "../core/routes.ts";
import { ApiGatewayNotifier } from "./apigw-notifier.ts";
import { createClients, type Clients } from "./clients.ts";
import { DynamoDbApiKeyStore } from "./dynamodb-api-keys.ts";
import { DynamoDbBatchStore } from "./dynamodb-batches.ts";
import { DynamoDbCapacityLedger } from "./dynamodb-capacity-ledger.ts";
import { DynamoDbConnectionStore } from "./dynamodb-connections.ts";
import { DynamoDbFileStore, DynamoDbUploadStore } from "./dynamodb-files.ts";
import { DynamoDbIdempotencyStore } from "./dynamodb-idempotency.ts";
import { DynamoDbJobStore } from "./dynamodb-job-store.ts";
import { DynamoDbQueueBoardStore } from "./dynamodb-queue-board.ts";
import { DynamoDbRouteSettingsStore } from "./dynamodb-route-settings.ts";
import { DynamoDbSubscriptionStore } from "./dynamodb-subscriptions.ts";
import { DynamoDbTenantStore } from "./dynamodb-tenants.ts";
import { DynamoDbTicketStore } from "./dynamodb-tickets.ts";
import { DynamoDbUsageMeter } from "./dynamodb-usage.ts";
import { SageMakerFleetView } from "./sagemaker-fleet.ts";
import { SageMakerInvoker } from "./sagemaker-invoker.ts";
import { S3BlobStore } from "./s3-blob-store.ts";
import { SqsJobQueue } from "./sqs-job-queue.ts";
import { SqsBatchControlQueue } from "./sqs-batch-control.ts";
import { SqsWebhookOutbox } from "./sqs-webhook-outbox.ts";
import { DynamoDbWebhookEndpointStore } from "./dynamodb-webhook-endpoints.ts";

/** Every port, wired to AWS: what handlers hand to the use cases. */
export type Deps = {
  readonly catalog: RouteCatalog;
  readonly jobs: JobStore;
  readonly idempotency: IdempotencyStore;
  readonly batches: BatchStore;
  readonly apiKeys: ApiKeyStore;
  readonly tickets: TicketStore;
  readonly tenants: TenantStore;
  readonly usage: UsageMeter;
  readonly tally: BatchTally;
  readonly slots: SlotAudit;
  readonly connections: ConnectionStore;
  readonly subscriptions: SubscriptionStore;
  readonly queue: JobQueue;
  readonly invoker: Invoker;
  readonly fleet: FleetView;
  readonly notifier: Notifier;
  readonly clock: Clock;
  readonly ids: Ids;
  readonly ledger: CapacityLedger;
  readonly routeSettings: RouteSettingsStore;
  readonly queueBoard: QueueBoardStore;
  readonly files: FileStore;
  readonly uploads: UploadStore;
  readonly blobs: BlobStore;
  readonly sleep: Sleep;
  readonly random: () => number;
  readonly batchControl: BatchControlQueue;
  /** Where batch transitions put webhook events (the webhooks queue). */
  readonly webhooks: WebhookOutbox;
  readonly webhookEndpoints: WebhookEndpointStore;
  /** The same queue, as the delivery function retries on it. */
  readonly webhookRetries: WebhookRetryQueue;
  readonly webhookTransport: WebhookTransport;
  readonly webhookFirstRetrySeconds: number;
  readonly allowLoopbackWebhooks: boolean;
};

const id = (prefix: string) => () => `${prefix}_${randomUUID().replaceAll("-", "")}`;

export const systemClock: Clock = { now: () => new Date() };
export const randomIds: Ids = { job: id("job"), batch: id("batch"), gpuBatch: id("gpu"), holder: id("holder") };

export function buildDeps(config: Config, clients: Clients = createClients({ wsEndpoint: config.wsEndpoint })): Deps {
  const table = (tableName: string) => ({ client: clients.dynamodb, tableName });
  const meter = new DynamoDbUsageMeter(table(config.tables.usage));
  // A batch's lines are given back and counted started together, not a write per line (app/line-slots.ts).
  const usage = new CoalescedLineSlots(meter, sleep);
  const webhookQueue = new SqsWebhookOutbox({ client: clients.sqs, queueName: config.webhookQueueName });
  return {
    catalog: config.catalog,
    // Every terminal transition gives the job's quota slot back, whoever makes it.
    jobs: new QuotaReleasingJobStore(new DynamoDbJobStore(table(config.tables.jobs)), usage),
    usage,
    // The batches' counts live in the quota's chunks of lines, written by the same give-back.
    tally: usage,
    // The slot sweep reads and fixes the same counters (app/slot-sweep.ts).
    slots: meter,
    tenants: new DynamoDbTenantStore(table(config.tables.tenants)),
    idempotency: new DynamoDbIdempotencyStore(table(config.tables.idempotencyKeys)),
    batches: new DynamoDbBatchStore(table(config.tables.batches)),
    apiKeys: new DynamoDbApiKeyStore(table(config.tables.apiKeys)),
    tickets: new DynamoDbTicketStore(table(config.tables.wsTickets)),
    connections: new DynamoDbConnectionStore(table(config.tables.connections)),
    subscriptions: new DynamoDbSubscriptionStore(table(config.tables.subscriptions)),
    queue: new SqsJobQueue({ client: clients.sqs, queueName: config.queueName }),
    invoker: new SageMakerInvoker({ client: clients.sagemaker, catalog: config.catalog, names: config.sagemaker }),
    fleet: new SageMakerFleetView({ client: clients.sagemakerControl, names: config.sagemaker }),
    notifier: new ApiGatewayNotifier({ client: clients.connections }),
    clock: systemClock,
    ids: randomIds,
    ledger: new DynamoDbCapacityLedger(table(config.tables.capacity)),
    routeSettings: new DynamoDbRouteSettingsStore(table(config.tables.routeSettings)),
    queueBoard: new DynamoDbQueueBoardStore(table(config.tables.queueBoard)),
    files: new DynamoDbFileStore(table(config.tables.files)),
    uploads: new DynamoDbUploadStore(table(config.tables.files)),
    blobs: new S3BlobStore({ client: clients.s3, bucket: config.filesBucket }),
    sleep,
    random: Math.random,
    batchControl: new SqsBatchControlQueue({ client: clients.sqs, queueName: config.batchControlQueue }),
    webhooks: webhookQueue,
    webhookEndpoints: new DynamoDbWebhookEndpointStore(table(config.tables.webhookEndpoints)),
    webhookRetries: webhookQueue,
    webhookTransport: fetchWebhookTransport,
    webhookFirstRetrySeconds: config.webhooks.firstRetrySeconds,
    allowLoopbackWebhooks: config.webhooks.allowLoopback,
  };
}

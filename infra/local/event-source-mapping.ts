import { setTimeout as delay } from "node:timers/promises";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSEvent, SQSRecord } from "aws-lambda";
import {
  describeRefusal,
  type EventSourceMappingRefusal,
  type EventSourceMappingRequest,
  eventSourceMappingRefusal,
} from "#shared/core/event-source-mapping-rules";
import { LOCAL_REGION } from "./aws.ts";
import { batchOutcome, type InvokeResult, recordBytes, toSqsRecord } from "./lambda-sqs-event.ts";
import { type Logger, silentLogger } from "./log.ts";
import type { EventSourceMappingDefinition } from "./template.ts";

/** Invokes a function synchronously (RequestResponse), as the event source mapping does. */
export type Invoker = (functionName: string, event: SQSEvent) => Promise<InvokeResult>;

/**
 * Without ScalingConfig.MaximumConcurrency AWS scales pollers with the backlog (up to 1,250
 * concurrent invocations, starting at 5). Locally 5 pollers stand for that.
 */
export const DEFAULT_MAXIMUM_CONCURRENCY = 5;
/** Lambda's invocation payload limit, which also caps a batch. */
export const MAX_BATCH_BYTES = 6 * 1024 * 1024;
const LONG_POLL_SECONDS = 20;
const ERROR_BACKOFF_MS = 1000;
/**
 * How long a poller goes on deleting what the function finished while SQS does not answer (its
 * server down): AWS's pollers retry the delete too, rather than let a done message come back.
 * Past it the messages come back after their visibility timeout and are delivered again.
 */
const SETTLE_RETRY_MS = 30_000;

export type MappingSettings = Pick<
  EventSourceMappingDefinition,
  "functionName" | "batchSize" | "maximumBatchingWindowSeconds" | "maximumConcurrency" | "reportBatchItemFailures" | "functionResponseTypes"
>;

/** The settings as CreateEventSourceMapping takes them. */
export function mappingRequest(mapping: Omit<MappingSettings, "functionName">): EventSourceMappingRequest {
  return {
    BatchSize: mapping.batchSize,
    MaximumBatchingWindowInSeconds: mapping.maximumBatchingWindowSeconds,
    ...(mapping.maximumConcurrency !== undefined && { ScalingConfig: { MaximumConcurrency: mapping.maximumConcurrency } }),
    FunctionResponseTypes: mapping.functionResponseTypes ?? (mapping.reportBatchItemFailures ? ["ReportBatchItemFailures"] : []),
  };
}

/** AWS refused to create the mapping; `refusal` is its error name and message. */
export class EventSourceMappingRefused extends Error {
  override readonly name = "EventSourceMappingRefused";
  readonly refusal: EventSourceMappingRefusal;

  constructor(what: string, refusal: EventSourceMappingRefusal) {
    super(`${what}: ${describeRefusal(refusal)}`);
    this.refusal = refusal;
  }
}

/**
 * Throws what AWS answers to CreateEventSourceMapping with these settings on an SQS standard
 * queue, if it refuses them; `what` names the mapping in the message.
 */
export function assertMappingAccepted(mapping: Omit<MappingSettings, "functionName">, what: string): void {
  const refusal = eventSourceMappingRefusal(mappingRequest(mapping));
  if (refusal) throw new EventSourceMappingRefused(what, refusal);
}

export type EventSourceMappingOptions = {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly mapping: MappingSettings;
  readonly invoke: Invoker;
  readonly log?: Logger;
  /** Ends pending long polls (LocalSqs.wakeReceivers); without it stop() may wait up to 20 s. */
  readonly wakeReceivers?: () => void;
};

export type RunningEventSourceMapping = {
  /** Stops polling, lets invocations in flight finish and settles their messages. */
  stop(): Promise<void>;
};

/**
 * Lambda's SQS event source mapping, locally: MaximumConcurrency pollers, each long-polling the
 * queue and gathering a batch until BatchSize, 6 MB, or MaximumBatchingWindowInSeconds after
 * the batch's first message, then invoking the function and deleting what succeeded. Failed
 * messages are left alone: the queue's visibility timeout brings them back and its redrive
 * policy sends them to the DLQ, exactly as in AWS. Settings AWS refuses throw
 * EventSourceMappingRefused, with AWS's error, before any poller starts.
 */
export function startEventSourceMapping(options: EventSourceMappingOptions): RunningEventSourceMapping {
  const { mapping, wakeReceivers } = options;
  // AWS would not have created it: no poller starts.
  assertMappingAccepted(mapping, `event source mapping ${options.queueArn} -> ${mapping.functionName}`);
  const stopping = new AbortController();
  const pollers = Array.from({ length: mapping.maximumConcurrency ?? DEFAULT_MAXIMUM_CONCURRENCY }, () =>
    runPoller(options, stopping.signal),
  );
  const done = Promise.all(pollers).then(() => undefined);
  return {
    async stop() {
      stopping.abort();
      if (!wakeReceivers) return done;
      // A ReceiveMessage may reach fauxqs just after a wake-up, so wake until every poller is out.
      wakeReceivers();
      const waker = setInterval(wakeReceivers, 50);
      try {
        await done;
      } finally {
        clearInterval(waker);
      }
    },
  };
}

async function runPoller(options: EventSourceMappingOptions, stopping: AbortSignal): Promise<void> {
  let carry: SQSRecord[] = [];
  while (!stopping.aborted) {
    try {
      const gathered = await gather(options, stopping, carry);
      carry = gathered.carry;
      if (stopping.aborted) carry = [...gathered.batch, ...carry];
      else await invokeAndSettle(options, gathered.batch);
    } catch (error) {
      // A poller must outlive a bad moment of the emulator; what it held comes back by itself.
      (options.log ?? silentLogger).error(`poller of ${options.queueUrl}: ${String(error)}`);
      carry = [];
      await backOff(stopping);
    }
  }
  await release(options, carry).catch((error: unknown) => options.log?.warn(`release ${options.queueUrl}: ${String(error)}`));
}

/** A pause after an error, cut short by stop(). */
function backOff(stopping: AbortSignal): Promise<void> {
  return delay(ERROR_BACKOFF_MS, undefined, { signal: stopping }).catch(() => undefined);
}

/** One batch: records to invoke with, and any received beyond the byte limit (the next batch's start). */
async function gather(
  options: EventSourceMappingOptions,
  stopping: AbortSignal,
  carried: readonly SQSRecord[],
): Promise<{ batch: SQSRecord[]; carry: SQSRecord[] }> {
  const { batchSize, maximumBatchingWindowSeconds } = options.mapping;
  const windowMs = maximumBatchingWindowSeconds * 1000;
  const batch = [...carried];
  const carry: SQSRecord[] = [];
  let bytes = batch.reduce((sum, r) => sum + recordBytes(r), 0);
  let deadline = batch.length > 0 ? Date.now() + windowMs : undefined;
  const full = () => batch.length >= batchSize || bytes >= MAX_BATCH_BYTES || carry.length > 0;
  const windowClosed = () => deadline !== undefined && Date.now() >= deadline;

  while (!stopping.aborted && !full() && !windowClosed()) {
    // fauxqs takes a fractional WaitTimeSeconds (AWS would not), which lets the window end on
    // time instead of on the next whole second.
    const waitSeconds = deadline === undefined ? LONG_POLL_SECONDS : Math.max(0, deadline - Date.now()) / 1000;
    const messages = await receive(options, Math.min(10, batchSize - batch.length), waitSeconds, stopping);
    for (const message of messages) {
      const record = toSqsRecord(message, { eventSourceARN: options.queueArn, awsRegion: LOCAL_REGION });
      const size = recordBytes(record);
      // Back after its visibility timeout ran out while the batch gathered: the newer receipt
      // handle is the one that can delete it.
      const again = batch.findIndex((r) => r.messageId === record.messageId);
      const previous = batch[again];
      if (previous !== undefined) {
        bytes += size - recordBytes(previous);
        batch[again] = record;
      } else if (batch.length > 0 && bytes + size > MAX_BATCH_BYTES) {
        carry.push(record);
      } else {
        batch.push(record);
        bytes += size;
      }
    }
    if (batch.length > 0 && deadline === undefined) deadline = Date.now() + windowMs;
  }
  return { batch, carry };
}

async function receive(options: EventSourceMappingOptions, max: number, waitSeconds: number, stopping: AbortSignal) {
  try {
    const output = await options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: options.queueUrl,
        MaxNumberOfMessages: max,
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    return output.Messages ?? [];
  } catch (error) {
    options.log?.warn(`ReceiveMessage ${options.queueUrl}: ${String(error)}`);
    await backOff(stopping);
    return [];
  }
}

async function invokeAndSettle(options: EventSourceMappingOptions, batch: readonly SQSRecord[]): Promise<void> {
  if (batch.length === 0) return;
  const { functionName, reportBatchItemFailures } = options.mapping;
  const log = options.log ?? silentLogger;
  const started = performance.now();
  let result: InvokeResult;
  try {
    result = await options.invoke(functionName, { Records: [...batch] });
  } catch (error) {
    // The invocation never happened (endpoint down, unknown function): like a function error,
    // the messages come back after the visibility timeout.
    log.warn(`invoke ${functionName}: ${String(error)}`);
    return;
  }
  const outcome = batchOutcome(result, batch.map((r) => r.messageId), reportBatchItemFailures);
  const ms = Math.round(performance.now() - started);
  log.debug(`${functionName} <- ${batch.length} records in ${ms} ms: ${outcome.succeeded.length} done, ${outcome.failed.length} failed`);
  if (outcome.reason !== undefined) log.warn(`${functionName}: batch of ${batch.length} failed: ${outcome.reason}`);
  const succeeded = new Set(outcome.succeeded);
  await deleteMessages(options, batch.filter((r) => succeeded.has(r.messageId)));
}

async function deleteMessages(options: EventSourceMappingOptions, records: readonly SQSRecord[]): Promise<void> {
  for (const chunk of chunks(records, 10)) {
    const command = new DeleteMessageBatchCommand({
      QueueUrl: options.queueUrl,
      Entries: chunk.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
    });
    const output = await untilAnswered(() => options.sqs.send(command), options, "DeleteMessageBatch");
    for (const failure of output.Failed ?? []) options.log?.warn(`DeleteMessage ${options.queueUrl}: ${failure.Code} ${failure.Message ?? ""}`);
  }
}

/** Hands back messages received but never invoked, so that they are visible again at once. */
async function release(options: EventSourceMappingOptions, records: readonly SQSRecord[]): Promise<void> {
  for (const chunk of chunks(records, 10)) {
    await options.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: chunk.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle, VisibilityTimeout: 0 })),
      }),
    );
  }
}

/** `call` again, with a growing pause, while SQS gives no answer (network error or 5xx), for up to SETTLE_RETRY_MS. */
async function untilAnswered<T>(call: () => Promise<T>, options: EventSourceMappingOptions, what: string): Promise<T> {
  const deadline = Date.now() + SETTLE_RETRY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const unanswered = status === undefined || status >= 500;
      if (!unanswered || Date.now() >= deadline) throw error;
      options.log?.warn(`${what} ${options.queueUrl}: ${String(error)}; trying again`);
      await delay(Math.min(ERROR_BACKOFF_MS, 50 * 2 ** attempt));
    }
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

import type { Message, MessageAttributeValue } from "@aws-sdk/client-sqs";
import type { SQSMessageAttribute, SQSRecord, SQSRecordAttributes } from "aws-lambda";

/**
 * What Lambda's SQS event source mapping puts in an event and what it makes of the function's
 * answer; pure, so the poller only does the I/O.
 */

export type EventSource = { readonly eventSourceARN: string; readonly awsRegion: string };

/** A received message as a record of the event Lambda sends. */
export function toSqsRecord(message: Message, source: EventSource): SQSRecord {
  const { MessageId, ReceiptHandle, MD5OfBody } = message;
  if (MessageId === undefined || ReceiptHandle === undefined || MD5OfBody === undefined) {
    throw new Error("ReceiveMessage returned a message without MessageId, ReceiptHandle or MD5OfBody");
  }
  return {
    messageId: MessageId,
    receiptHandle: ReceiptHandle,
    body: message.Body ?? "",
    attributes: recordAttributes(message.Attributes ?? {}),
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, recordAttribute(value)]),
    ),
    md5OfBody: MD5OfBody,
    eventSource: "aws:sqs",
    eventSourceARN: source.eventSourceARN,
    awsRegion: source.awsRegion,
  };
}

/** FIFO queues add their three; Lambda passes them when present. */
const fifoAttributes = ["SequenceNumber", "MessageGroupId", "MessageDeduplicationId"] as const;

function recordAttributes(attributes: Readonly<Record<string, string>>): SQSRecordAttributes {
  return {
    ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
    SentTimestamp: attributes.SentTimestamp ?? "",
    SenderId: attributes.SenderId ?? "",
    ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? "",
    ...Object.fromEntries(fifoAttributes.filter((name) => attributes[name] !== undefined).map((name) => [name, attributes[name]])),
  };
}

/** Lambda's shape: camelCase, binary as base64, and the (unused) list fields always present. */
function recordAttribute(value: MessageAttributeValue): SQSMessageAttribute {
  return {
    ...(value.StringValue !== undefined && { stringValue: value.StringValue }),
    ...(value.BinaryValue !== undefined && { binaryValue: Buffer.from(value.BinaryValue).toString("base64") }),
    stringListValues: [],
    binaryListValues: [],
    dataType: value.DataType ?? "String",
  };
}

/** The event's size as Lambda counts it against its 6 MB invocation payload limit. */
export function recordBytes(record: SQSRecord): number {
  return Buffer.byteLength(JSON.stringify(record), "utf8");
}

export type InvokeResult = {
  /** Set when the function failed ("Unhandled", "Handled"), as InvokeCommand reports it. */
  readonly functionError?: string | undefined;
  /** The response payload as text (JSON when the function returned normally). */
  readonly payload: string;
};

/** Which messages of an invoked batch are done (to delete) and which failed (to come back). */
export type BatchOutcome = {
  readonly succeeded: readonly string[];
  readonly failed: readonly string[];
  /** Why the whole batch failed, when it did. */
  readonly reason?: string;
};

/**
 * AWS's rules: a function error fails the whole batch. Without ReportBatchItemFailures any normal
 * return succeeds it. With it, a null/empty response or batchItemFailures succeeds it, the listed
 * itemIdentifiers fail, and an invalid response (not JSON, not an object, an itemIdentifier that
 * is empty, missing or not in the batch) fails the whole batch.
 */
export function batchOutcome(result: InvokeResult, messageIds: readonly string[], reportBatchItemFailures: boolean): BatchOutcome {
  const allFailed = (reason: string): BatchOutcome => ({ succeeded: [], failed: messageIds, reason });
  if (result.functionError !== undefined) return allFailed(`function error (${result.functionError}): ${result.payload.slice(0, 500)}`);
  if (!reportBatchItemFailures) return { succeeded: messageIds, failed: [] };

  const failures = batchItemFailures(result.payload);
  if (typeof failures === "string") return allFailed(failures);
  const inBatch = new Set(messageIds);
  const unknown = failures.find((id) => !inBatch.has(id));
  if (unknown !== undefined) return allFailed(`batchItemFailures names "${unknown}", which is not in the batch`);
  const failed = new Set(failures);
  return { succeeded: messageIds.filter((id) => !failed.has(id)), failed: messageIds.filter((id) => failed.has(id)) };
}

/** The itemIdentifiers of a response, or why the response is invalid. */
function batchItemFailures(payload: string): string[] | string {
  if (payload.trim() === "") return [];
  let response: unknown;
  try {
    response = JSON.parse(payload);
  } catch {
    return `response is not JSON: ${payload.slice(0, 200)}`;
  }
  if (response === null) return [];
  if (typeof response !== "object" || Array.isArray(response)) return `response is not an object: ${payload.slice(0, 200)}`;
  const list = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) return "batchItemFailures is not a list";
  const ids: string[] = [];
  for (const item of list) {
    const id = typeof item === "object" && item !== null ? (item as { itemIdentifier?: unknown }).itemIdentifier : undefined;
    if (typeof id !== "string" || id === "") return `invalid batchItemFailures entry ${JSON.stringify(item)}`;
    ids.push(id);
  }
  return ids;
}

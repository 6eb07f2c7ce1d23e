import { handleWebhookRecord } from "#shared/app/webhook-delivery";
import { sqsRecordFunction } from "#shared/lambda";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = sqsRecordFunction((record) =>
  handleWebhookRecord(deps, { body: record.body, receiveCount: Number(record.attributes.ApproximateReceiveCount), receiptHandle: record.receiptHandle }),
);

import { finalizeBatch } from "#shared/app/batch-finalize";
import { ingestBatch } from "#shared/app/batch-ingest";
import { batchControlMessageSchema } from "#shared/core/batch-control";
import { sqsRecordFunction } from "#shared/lambda";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = sqsRecordFunction(async (record) => {
  const message = batchControlMessageSchema.parse(JSON.parse(record.body));
  await (message.step === "ingest" ? ingestBatch(deps, message.batch_id) : finalizeBatch(deps, message.batch_id));
});

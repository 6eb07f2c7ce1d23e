import { handleDeadLetter } from "#shared/app/dead-letter";
import { sqsRecordFunction } from "#shared/lambda";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = sqsRecordFunction((record) => handleDeadLetter(deps, record.body, Number(record.attributes.ApproximateReceiveCount)));

import { JobOutcomeTally, OutcomeRecordingJobStore } from "#shared/app/job-outcomes";
import { handleDeadLetter } from "#shared/app/dead-letter";
import { sqsRecordFunction } from "#shared/lambda";
import { publishOutcomes } from "#shared/observability";
import { runtimeDeps } from "#shared/runtime";

const runtime = runtimeDeps();
const outcomes = new JobOutcomeTally();
const deps = { ...runtime, jobs: new OutcomeRecordingJobStore(runtime.jobs, outcomes) };

export const handler = sqsRecordFunction(async (record) => {
  try {
    await handleDeadLetter(deps, record.body, Number(record.attributes.ApproximateReceiveCount));
  } finally {
    // The jobs it failed count among the route's errors (kind: their error code).
    publishOutcomes(outcomes.drain(), deps.config.resourcePrefix);
  }
});

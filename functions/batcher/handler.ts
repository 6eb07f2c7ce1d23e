import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { copyRecordingFleet, JobOutcomeTally, OutcomeRecordingJobStore } from "#shared/app/job-outcomes";
import { processDelivery } from "#shared/app/process-delivery";
import { laneOfQueue, topUpLatest, topUpUntil } from "#shared/config";
import { lambdaFunction } from "#shared/lambda";
import { metrics, publishOutcomes } from "#shared/observability";
import { runtimeDeps } from "#shared/runtime";

const runtime = runtimeDeps();
const outcomes = new JobOutcomeTally();
const deps = { ...runtime, jobs: new OutcomeRecordingJobStore(runtime.jobs, outcomes), fleet: copyRecordingFleet(runtime.fleet, outcomes) };

export const handler = lambdaFunction<SQSEvent, SQSBatchResponse>(
  async (event, context) => {
    const now = new Date();
    const remainingMs = context.getRemainingTimeInMillis();
    const report = await processDelivery(
      deps,
      event.Records.map((r) => ({ messageId: r.messageId, receiptHandle: r.receiptHandle, body: r.body, lane: laneOfQueue(r.eventSourceARN) })),
      { topUpUntil: topUpUntil(deps.config.batcher, now, remainingMs), topUpLatest: topUpLatest(deps.config.batcher, now, remainingMs) },
    );
    metrics.addMetric("DeliveredMessages", MetricUnit.Count, event.Records.length);
    metrics.addMetric("MessagesPulled", MetricUnit.Count, report.pulled);
    metrics.addMetric("MessagesPulledInteractive", MetricUnit.Count, report.pulledByLane.interactive);
    for (const size of report.gpuBatchSizes) metrics.addMetric("GpuBatchSize", MetricUnit.Count, size);
    metrics.addMetric("MessagesRetried", MetricUnit.Count, report.retry.length);
    publishOutcomes(outcomes.drain(), deps.config.resourcePrefix);
    return { batchItemFailures: report.retry.map((itemIdentifier) => ({ itemIdentifier })) };
  },
  { metrics: true },
);

import middy from "@middy/core";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { processWindow } from "#shared/app/process-window";
import { logger, metrics } from "#shared/observability";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

/** Longest a batcher keeps topping its window up from the queue. */
const TOP_UP_BUDGET_MS = 60_000;
/** What must stay for the last GPU calls (60 s invocation limit) and the final writes. */
const FINISH_RESERVE_MS = 75_000;

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .handler(async (event, context) => {
    const budget = Math.max(0, Math.min(TOP_UP_BUDGET_MS, context.getRemainingTimeInMillis() - FINISH_RESERVE_MS));
    const report = await processWindow(
      deps,
      event.Records.map((r) => ({ messageId: r.messageId, receiptHandle: r.receiptHandle, body: r.body })),
      { topUpUntil: new Date(Date.now() + budget) },
    );
    metrics.addMetric("WindowMessages", MetricUnit.Count, event.Records.length);
    metrics.addMetric("MessagesPulled", MetricUnit.Count, report.pulled);
    for (const size of report.gpuBatchSizes) metrics.addMetric("GpuBatchSize", MetricUnit.Count, size);
    metrics.addMetric("MessagesRetried", MetricUnit.Count, report.retry.length);
    return { batchItemFailures: report.retry.map((itemIdentifier) => ({ itemIdentifier })) };
  });

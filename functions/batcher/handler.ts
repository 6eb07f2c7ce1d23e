import middy from "@middy/core";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { processWindow } from "#shared/app/process-window";
import { logger, metrics } from "#shared/observability";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .handler(async (event) => {
    const { retry, gpuBatchSizes } = await processWindow(deps, event.Records.map((r) => ({ messageId: r.messageId, body: r.body })));
    metrics.addMetric("WindowMessages", MetricUnit.Count, event.Records.length);
    for (const size of gpuBatchSizes) metrics.addMetric("GpuBatchSize", MetricUnit.Count, size);
    metrics.addMetric("MessagesRetried", MetricUnit.Count, retry.length);
    return { batchItemFailures: retry.map((itemIdentifier) => ({ itemIdentifier })) };
  });

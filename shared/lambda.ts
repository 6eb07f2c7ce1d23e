import middy from "@middy/core";
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { logger, metrics } from "./observability.ts";

/**
 * A function under the middy stack every function runs: the invocation's context on each log
 * line and, with `metrics`, what it added flushed as EMF when it ends. Opt-in because Powertools
 * warns on every flush with no metric in it.
 */
export function lambdaFunction<TEvent, TResult>(
  handler: (event: TEvent, context: Context) => Promise<TResult>,
  options: { readonly metrics?: boolean } = {},
) {
  const stack = middy<TEvent, TResult>().use(injectLambdaContext(logger));
  return (options.metrics ? stack.use(logMetrics(metrics)) : stack).handler(handler);
}

/**
 * An SQS function that handles its records one by one: a record whose handler throws is logged
 * and reported in batchItemFailures, for SQS to deliver again, while the others proceed.
 */
export function sqsRecordFunction(handleRecord: (record: SQSRecord) => Promise<void>) {
  const handleLogged = async (record: SQSRecord) => {
    try {
      await handleRecord(record);
    } catch (error) {
      logger.error("record failed; SQS delivers it again", { messageId: record.messageId, error });
      throw error;
    }
  };
  return lambdaFunction<SQSEvent, SQSBatchResponse>((event, context) =>
    processPartialResponse(
      event,
      handleLogged,
      // One processor per invocation: it keeps the batch's state, and serverless-offline runs
      // concurrent invocations in one process.
      new BatchProcessor(EventType.SQS),
      // A batch whose records all failed is answered as before, every id in batchItemFailures,
      // rather than with an error: SQS delivers them all again either way.
      { context, throwOnFullBatchFailure: false },
    ),
  );
}

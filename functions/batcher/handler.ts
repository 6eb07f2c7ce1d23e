import middy from "@middy/core";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { processWindow } from "#shared/app/process-window";
import { logger } from "#shared/observability";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger))
  .handler(async (event) => {
    const { retry } = await processWindow(deps, event.Records.map((r) => ({ messageId: r.messageId, body: r.body })));
    return { batchItemFailures: retry.map((itemIdentifier) => ({ itemIdentifier })) };
  });

import middy from "@middy/core";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { handleDeadLetter } from "#shared/app/dead-letter";
import { logger } from "#shared/observability";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger))
  .handler(async (event) => {
    const settled = await Promise.allSettled(
      event.Records.map((r) => handleDeadLetter(deps, r.body, Number(r.attributes.ApproximateReceiveCount))),
    );
    const failed = event.Records.filter((_, i) => settled[i]?.status === "rejected");
    return { batchItemFailures: failed.map((r) => ({ itemIdentifier: r.messageId })) };
  });

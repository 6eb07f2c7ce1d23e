import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { localClientConfig } from "./aws.ts";
import type { Invoker } from "./event-source-mapping.ts";
import type { InvokeResult } from "./lambda-sqs-event.ts";

/**
 * Invokes functions through serverless-offline's Lambda API. No SDK retries: a retried invoke
 * would run the batcher twice for one delivery, which SQS redelivery already covers.
 */
export function lambdaInvoker(endpoint: string): Invoker {
  return lambdaEventInvoker(endpoint);
}

/** The same, for any event (a schedule's). */
export function lambdaEventInvoker(endpoint: string): (functionName: string, event: unknown) => Promise<InvokeResult> {
  const lambda = new LambdaClient({ ...localClientConfig(endpoint), maxAttempts: 1 });
  const decoder = new TextDecoder();
  return async (functionName, event) => {
    const output = await lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: "RequestResponse",
        Payload: new TextEncoder().encode(JSON.stringify(event)),
      }),
    );
    return { functionError: output.FunctionError, payload: output.Payload ? decoder.decode(output.Payload) : "" };
  };
}

import type { ContainerFormat } from "#shared/core/codecs/index";

/**
 * SageMaker runtime error replies, in the shape the AWS SDK v3 (restJson1) deserialises: it takes
 * the exception name from `x-amzn-errortype` (anything after a `:` dropped; without the header,
 * from the body's `__type` or `code`) and the message from the JSON body, as checked with client
 * 3.1164. Each says which SDK exception it becomes (test/integration/sagemaker-errors.test.ts).
 */
export type Reply = {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
};

const account = "000000000000";
const region = "us-east-1";

function errorReply(status: number, errorType: string, body: Record<string, unknown>): Reply {
  return {
    status,
    headers: { "content-type": "application/json", "x-amzn-errortype": errorType },
    body: JSON.stringify(body),
  };
}

/** 400 ValidationError: the request names something that does not exist or breaks an API rule. */
export function validationError(message: string): Reply {
  return errorReply(400, "ValidationError", { message });
}

export function endpointNotFound(endpoint: string): Reply {
  return validationError(`Endpoint ${endpoint} of account ${account} not found.`);
}

export function componentHeaderMissing(endpoint: string): Reply {
  return validationError(`Inference Component Name header is required for endpoint ${endpoint}, which hosts inference components.`);
}

export function componentNotFound(component: string, endpoint: string): Reply {
  return validationError(`Inference component ${component} not found on endpoint ${endpoint}.`);
}

/**
 * 413 for a body over the component's payload limit. Real endpoints have answered both a bare 413
 * ("HTTP content length exceeded ... bytes", which the SDK could only name "Unknown") and a
 * ValidationError ("Request ... has oversize body."); the status of the first and the name of the
 * second let callers match either way.
 */
export function payloadTooLarge(requestId: string, limitBytes: number): Reply {
  return errorReply(413, "ValidationError", {
    message: `Request ${requestId} has oversize body. The payload limit of this inference component is ${limitBytes} bytes.`,
  });
}

/**
 * An inference component with no copy in service (scaled to zero, or its copies still warming up):
 * SageMaker answers 400 ValidationError with this message, word for word as AWS's scale-to-zero
 * blog post shows it (docs/autoscaling.md). The SDK does not retry it; the refusal counts in
 * NoCapacityInvocationFailures, whose alarm is what wakes the component.
 */
export function noCapacity(): Reply {
  return validationError(
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress (if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API.",
  );
}

/** SageMaker's own rate limit: 400 ThrottlingException "Rate exceeded"; the SDK retries it as throttling. */
export function throttled(): Reply {
  return errorReply(400, "ThrottlingException", { message: "Rate exceeded" });
}

/** The service failing on its side: each an SDK exception of its own, all retried by the SDK. */
export const serviceFaults = {
  ServiceUnavailable: () => errorReply(503, "ServiceUnavailable", { message: "Service is unavailable. Please try again later." }),
  InternalFailure: () => errorReply(500, "InternalFailure", { message: "An internal failure occurred." }),
  InternalDependencyException: () => errorReply(530, "InternalDependencyException", { message: "An internal dependency failed." }),
} as const;
export type ServiceFault = keyof typeof serviceFaults;

/** 500 InternalFailure: a bug in the emulator, reported the way SageMaker reports its own. */
export function internalFailure(message: string): Reply {
  return errorReply(500, "InternalFailure", { message });
}

const logStreamArn = (component: string) =>
  `arn:aws:logs:${region}:${account}:log-group:/aws/sagemaker/InferenceComponents/${component}`;

/** 424 ModelError: the model server answered with an error of its own (OriginalStatusCode). */
function modelError(component: string, originalStatus: number, originalMessage: string, errorCode: string): Reply {
  const kind = originalStatus >= 400 && originalStatus < 500 ? "client" : "server";
  const message =
    `Received ${kind} error (${originalStatus}) from primary with message "${originalMessage}". ` +
    `See https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#logEventViewer:group=/aws/sagemaker/InferenceComponents/${component} ` +
    `in account ${account} for more information.`;
  return errorReply(424, "ModelError", {
    Message: message,
    OriginalStatusCode: originalStatus,
    OriginalMessage: originalMessage,
    LogStreamArn: logStreamArn(component),
    ErrorCode: errorCode,
  });
}

/**
 * The body a container answers an error with, in its format's words: DJL Serving's (LMI)
 * `{code, type, message}`, TGI's `{error, error_type}`, or vLLM's OpenAI-style
 * `{object: "error", message, type, code}`.
 */
function containerErrorBody(format: ContainerFormat, status: number, type: string, message: string): string {
  if (format === "openai-completions" || format === "openai-chat") return JSON.stringify({ object: "error", message, type, param: null, code: status });
  if (format === "tgi") return JSON.stringify({ error: message, error_type: tgiErrorType(status) });
  return JSON.stringify({ code: status, type, message });
}

const tgiErrorType = (status: number) => (status === 422 ? "validation" : status === 429 ? "overloaded" : "generation");

/** The model server rejected the request body (400, TGI's 422), or named a model it does not serve (vLLM's 404). */
export function modelClientError(component: string, format: ContainerFormat, message: string, status = 400): Reply {
  const type = format.startsWith("openai") ? (status === 404 ? "NotFoundError" : "BadRequestError") : "BadRequestException";
  return modelError(component, status, containerErrorBody(format, status, type, message), "CLIENT_ERROR_FROM_MODEL");
}

/**
 * The container's queue is full: it refuses with 429 (DJL Serving's WlmCapacityException, its
 * throttle status set to 429; TGI's "Model is overloaded"), and SageMaker passes a container's
 * error on as a 424 ModelError with OriginalStatusCode 429, as it did for
 * `Received server error (503) from primary with message "{"code": 503, "type": "WlmCapacityException", ...}"`
 * with DJL's default throttle status.
 */
export function containerQueueFull(component: string, format: ContainerFormat, queueLength: number): Reply {
  const message = format === "tgi" ? "Model is overloaded" : `Worker queue capacity exceeded for model: ${component} (READY): ${queueLength} requests waiting`;
  return modelError(component, 429, containerErrorBody(format, 429, "WlmCapacityException", message), "CLIENT_ERROR_FROM_MODEL");
}

/** The container crashed on the request (an injected fault): ModelError with OriginalStatusCode 500. */
export function modelServerError(component: string, format: ContainerFormat): Reply {
  return modelError(component, 500, containerErrorBody(format, 500, "InternalServerException", "Prediction failed"), "SERVER_ERROR_FROM_MODEL");
}

const timeoutMessage = (limitSeconds: number) =>
  `Your invocation timed out after ${limitSeconds} s while waiting for a response from container primary. Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.`;

/**
 * The invocation ran past max_invocation_seconds. SageMaker reports this as a ModelError with
 * original status 0 ("Received server error (0) ... Your invocation timed out while waiting for a
 * response from container primary"); the error code is the one its streaming API documents for
 * the same cause.
 */
export function modelTimeout(component: string, limitSeconds: number): Reply {
  return modelError(component, 0, timeoutMessage(limitSeconds), "ModelInvocationTimeExceeded");
}

/**
 * An error inside a response stream, after the 200: the SDK throws the exception named by
 * `:exception-type` from its `for await` over the body. SageMaker documents two error codes for
 * ModelStreamError: ModelInvocationTimeExceeded and StreamBroken.
 */
export type StreamFailure = { readonly exceptionType: "ModelStreamError"; readonly body: { readonly Message: string; readonly ErrorCode: string } };

/**
 * A stream past the invocation limit, in the words SageMaker sent a client on re:Post
 * ("invoke-streaming-timeout-error": "Your model primary did not complete sending the inference
 * response in the allotted time."). AWS documents no streaming limit longer than InvokeEndpoint's
 * 60 s (docs/long-generations.md), so the stream is cut at the same max_invocation_seconds.
 */
export function streamTimedOut(): StreamFailure {
  return { exceptionType: "ModelStreamError", body: { Message: "Your model primary did not complete sending the inference response in the allotted time.", ErrorCode: "ModelInvocationTimeExceeded" } };
}

export function streamBroken(): StreamFailure {
  return { exceptionType: "ModelStreamError", body: { Message: "The connection between the client and the model was reset or closed.", ErrorCode: "StreamBroken" } };
}

export function notFound(path: string): Reply {
  return { status: 404, headers: { "content-type": "application/json" }, body: JSON.stringify({ message: `No route for ${path}` }) };
}

/**
 * SageMaker runtime error replies, in the shape the AWS SDK v3 (restJson1) deserialises: it takes
 * the exception name from `x-amzn-errortype` and the message from the JSON body
 * (../shared/research/eco-verification.md section 4).
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
 * 429 ModelNotReadyException for a component with no copies (scaled to zero): SageMaker's
 * retryable "not ready" answer, which the SDK retries as throttling. A ValidationError would tell
 * callers never to retry, yet the component may scale up.
 */
export function noCopies(component: string): Reply {
  return errorReply(429, "ModelNotReadyException", {
    message: `Inference component ${component} has no copies running; retry once it scales up.`,
  });
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

/** The model server rejected the request body (LMI answers 400). */
export function modelClientError(component: string, message: string): Reply {
  return modelError(component, 400, JSON.stringify({ code: 400, type: "BadRequestException", message }), "CLIENT_ERROR_FROM_MODEL");
}

/**
 * The invocation ran past max_invocation_seconds. SageMaker reports this as a ModelError with
 * original status 0 ("Received server error (0) ... Your invocation timed out while waiting for a
 * response from container primary"); the error code is the one its streaming API documents for
 * the same cause.
 */
export function modelTimeout(component: string, limitSeconds: number): Reply {
  return modelError(
    component,
    0,
    `Your invocation timed out after ${limitSeconds} s while waiting for a response from container primary. Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.`,
    "ModelInvocationTimeExceeded",
  );
}

/** 500 InternalFailure: a bug in the emulator, reported the way SageMaker reports its own. */
export function internalFailure(message: string): Reply {
  return errorReply(500, "InternalFailure", { message });
}

export function notFound(path: string): Reply {
  return { status: 404, headers: { "content-type": "application/json" }, body: JSON.stringify({ message: `No route for ${path}` }) };
}

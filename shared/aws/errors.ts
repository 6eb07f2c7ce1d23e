import { BatchlineError, ConflictError, ConnectionGoneError, ModelRejectedError, ModelWarmingError, RetryableError } from "../core/errors.ts";

/** The parts of an AWS SDK v3 error that decide what it means. */
type SdkErrorShape = {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
  OriginalStatusCode?: number;
  OriginalMessage?: string;
  ErrorCode?: string;
};

const THROTTLING = new Set(["ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded", "TooManyRequestsException", "ModelNotReadyException"]);

function shape(error: unknown): SdkErrorShape {
  return typeof error === "object" && error !== null ? (error as SdkErrorShape) : {};
}

/** Translates any SDK failure into the BatchlineError hierarchy; bugs pass through as they are. */
export function translateSdkError(error: unknown, what: string): unknown {
  if (error instanceof BatchlineError) return error;
  const e = shape(error);
  const status = e.$metadata?.httpStatusCode;
  if (e.name === "ConditionalCheckFailedException") return new ConflictError(`${what}: condition failed`, error);
  if (e.name !== undefined && THROTTLING.has(e.name)) return new RetryableError("throttled", `${what}: ${e.name}`, error);
  if (e.$retryable?.throttling || status === 429) return new RetryableError("throttled", `${what}: throttled`, error);
  if ((status !== undefined && status >= 500) || (e.$metadata !== undefined && status === undefined) || isNetworkError(e)) {
    return new RetryableError("unavailable", `${what}: ${e.name ?? "error"}: ${e.message ?? ""}`.trim(), error);
  }
  return error;
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ECONNABORTED"]);

/** A request that never got an HTTP answer: the SDK passes Node's socket errors through. */
function isNetworkError(e: SdkErrorShape): boolean {
  return e.name === "TimeoutError" || e.name === "AbortError" || (e.code !== undefined && NETWORK_CODES.has(e.code));
}

/**
 * An inference component with no copy in service (at zero, or its copies still warming up):
 * SageMaker answers a ValidationError saying so (docs/autoscaling.md). It is no deployment
 * problem: autoscaling wakes the component, so the job waits for it.
 */
const NO_CAPACITY = /has no capacity to process this request/i;

/**
 * SageMaker errors: a model that rejects the prompt (424 with a 4xx original status: vLLM's 400,
 * TGI's 422, LMI's 424) fails the job with the model's message; a model that crashed or timed out (before or during its response
 * stream), throttling, a component not ready and 5xx are worth another attempt. An unknown
 * endpoint or component is a deployment problem that fixing the routes file cures, so the job
 * waits in SQS for it rather than failing.
 */
export function translateSageMakerError(error: unknown, endpoint: string, containerMessage: (body: string) => string | undefined = () => undefined): unknown {
  const e = shape(error);
  if (e.name === "ModelError") {
    const original = e.OriginalStatusCode ?? 500;
    // The container's own words, out of its error body (codecs/: each format's shape), where they are in one.
    const message = (e.OriginalMessage && containerMessage(e.OriginalMessage)) ?? e.OriginalMessage ?? e.message ?? "model error";
    // The container's queue is full (LMI's WlmCapacityException): the prompt is fine, the copy busy.
    if (original === 429) return new RetryableError("throttled", `model container is full: ${message}`, error);
    if (original >= 400 && original < 500) return new ModelRejectedError(`model rejected the request: ${message}`, error);
    return new RetryableError("unavailable", `model failed (${original}): ${message}`, error);
  }
  // A response stream that broke or ran past the time limit after it began: the prompt was fine.
  if (e.name === "ModelStreamError" || e.name === "InternalStreamFailure") {
    return new RetryableError("unavailable", `model stream failed (${e.ErrorCode ?? e.name}): ${e.message ?? ""}`.trim(), error);
  }
  if (e.name === "ModelNotReadyException" || (e.name === "ValidationError" && NO_CAPACITY.test(e.message ?? ""))) {
    return new ModelWarmingError(`endpoint ${endpoint}: ${e.message ?? "model not ready"}`, error);
  }
  if (e.$metadata?.httpStatusCode === 413) return new ModelRejectedError(`request too large for endpoint ${endpoint}: ${e.message ?? "413"}`, error);
  if (e.name === "ValidationError") return new RetryableError("unavailable", `endpoint ${endpoint}: ${e.message ?? "validation error"}`, error);
  return translateSdkError(error, `endpoint ${endpoint}`);
}

/** API Gateway's 410: serverless-offline sends it without the error type header. */
export function translateConnectionError(error: unknown, connectionId: string): unknown {
  const e = shape(error);
  if (e.name === "GoneException" || e.$metadata?.httpStatusCode === 410) return new ConnectionGoneError(connectionId);
  return translateSdkError(error, `connection ${connectionId}`);
}

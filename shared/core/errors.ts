/**
 * The one error hierarchy. Adapters translate SDK errors into these at the boundary; use cases
 * and handlers only ever see a BatchlineError (or a bug).
 */
export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "rate_limited"
  | "model_error"
  | "throttled"
  | "warming"
  | "unavailable"
  | "connection_gone"
  | "internal";

export class BatchlineError extends Error {
  override readonly name: string = "BatchlineError";
  readonly code: ErrorCode;
  /** Whether trying the same thing again later may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Bad input from a caller; names the field and the rule it broke. */
export class ValidationError extends BatchlineError {
  override readonly name = "ValidationError";
  readonly field: string | undefined;
  readonly status: 400 | 413;
  constructor(message: string, field?: string, status: 400 | 413 = 400) {
    super(status === 413 ? "payload_too_large" : "invalid_request", message);
    this.field = field;
    this.status = status;
  }
}

export class UnauthorizedError extends BatchlineError {
  override readonly name = "UnauthorizedError";
  constructor(message = "missing or invalid API key") {
    super("unauthorized", message);
  }
}

/** A valid key asking for something only ops keys may do. */
export class ForbiddenError extends BatchlineError {
  override readonly name = "ForbiddenError";
  constructor(message: string) {
    super("forbidden", message);
  }
}

export class NotFoundError extends BatchlineError {
  override readonly name = "NotFoundError";
  constructor(message: string) {
    super("not_found", message);
  }
}

/** A conditional write lost: someone else moved the record first. */
export class ConflictError extends BatchlineError {
  override readonly name = "ConflictError";
  constructor(message: string, cause?: unknown) {
    super("conflict", message, { cause });
  }
}

/** The model rejected the request; trying again gives the same answer. */
export class ModelRejectedError extends BatchlineError {
  override readonly name = "ModelRejectedError";
  constructor(message: string, cause?: unknown) {
    super("model_error", message, { cause });
  }
}

/** Throttling, timeouts, 5xx: worth another attempt after a pause. */
export class RetryableError extends BatchlineError {
  override readonly name = "RetryableError";
  constructor(code: "throttled" | "unavailable", message: string, cause?: unknown) {
    super(code, message, { retryable: true, cause });
  }
}

/**
 * The component has no copy ready (scaled to zero, or a copy still loading the model): the job
 * should wait in the queue for it, without counting the wait as a failed attempt.
 */
export class ModelWarmingError extends BatchlineError {
  override readonly name = "ModelWarmingError";
  constructor(message: string, cause?: unknown) {
    super("warming", message, { retryable: true, cause });
  }
}

/** The caller is over a quota; trying again after `retryAfterSeconds` may work. */
export class RateLimitedError extends BatchlineError {
  override readonly name = "RateLimitedError";
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super("rate_limited", message, { retryable: true });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A WebSocket connection that API Gateway no longer knows (410 Gone). */
export class ConnectionGoneError extends BatchlineError {
  override readonly name = "ConnectionGoneError";
  readonly connectionId: string;
  constructor(connectionId: string) {
    super("connection_gone", `connection ${connectionId} is gone`);
    this.connectionId = connectionId;
  }
}

export function assertIsError(value: unknown): asserts value is Error {
  if (!(value instanceof Error)) throw new Error(`non-error thrown: ${String(value)}`, { cause: value });
}

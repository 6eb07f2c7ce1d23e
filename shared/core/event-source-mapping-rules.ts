/**
 * What AWS Lambda refuses in CreateEventSourceMapping / UpdateEventSourceMapping for an SQS
 * standard queue, refused here with AWS's own error name and words, so that the embedded stack
 * and infra/routes.yml refuse exactly the settings `osls deploy` would fail on.
 *
 * Two layers, in AWS's order:
 * - the API model's constraints (ranges, the FunctionResponseTypes enum), checked first, all at
 *   once: ValidationException, "1 validation error detected: Value '20000' at 'batchSize' failed
 *   to satisfy constraint: Member must have value less than or equal to 10000" (several are
 *   joined with "; " under "N validation errors detected");
 * - then the service's own rule for SQS: a BatchSize over 10 needs a batching window of at
 *   least 1 s (InvalidParameterValueException).
 *
 * Lambda's 6 MB invocation payload limit is not a setting: the poller caps each batch by it.
 */

/** The mapping's settings as the API takes them; an absent one is AWS's default for SQS. */
export type EventSourceMappingRequest = {
  /** Default 10; 1 to 10,000 for a standard queue. */
  readonly BatchSize?: number | undefined;
  /** Default 0; 0 to 300. */
  readonly MaximumBatchingWindowInSeconds?: number | undefined;
  /** MaximumConcurrency 2 to 1,000; absent: AWS scales pollers itself. */
  readonly ScalingConfig?: { readonly MaximumConcurrency?: number | undefined } | undefined;
  /** At most one item, ReportBatchItemFailures. */
  readonly FunctionResponseTypes?: readonly string[] | undefined;
};

export type EventSourceMappingErrorName = "ValidationException" | "InvalidParameterValueException";

/** What AWS answers instead of creating the mapping. */
export type EventSourceMappingRefusal = {
  readonly name: EventSourceMappingErrorName;
  readonly message: string;
};

/** AWS's defaults and limits for an SQS (standard queue) source. */
export const SQS_MAPPING_LIMITS = {
  defaultBatchSize: 10,
  minBatchSize: 1,
  maxBatchSize: 10_000,
  /** The largest BatchSize that needs no batching window. */
  maxBatchSizeWithoutWindow: 10,
  minBatchingWindowSeconds: 0,
  maxBatchingWindowSeconds: 300,
  minMaximumConcurrency: 2,
  maxMaximumConcurrency: 1000,
  functionResponseTypes: ["ReportBatchItemFailures"] as readonly string[],
  maxFunctionResponseTypes: 1,
} as const;

const L = SQS_MAPPING_LIMITS;

/** One member's model constraint, in the words of AWS's request validation. */
function range(value: number | undefined, path: string, min: number, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (value < min) return `Value '${value}' at '${path}' failed to satisfy constraint: Member must have value greater than or equal to ${min}`;
  if (value > max) return `Value '${value}' at '${path}' failed to satisfy constraint: Member must have value less than or equal to ${max}`;
  return undefined;
}

function responseTypes(types: readonly string[] | undefined): string | undefined {
  if (types === undefined) return undefined;
  const value = `Value '[${types.join(", ")}]' at 'functionResponseTypes' failed to satisfy constraint: `;
  if (types.length > L.maxFunctionResponseTypes) return `${value}Member must have length less than or equal to ${L.maxFunctionResponseTypes}`;
  if (types.some((t) => !L.functionResponseTypes.includes(t))) {
    return `${value}Member must satisfy constraint: [Member must satisfy enum value set: [${L.functionResponseTypes.join(", ")}], Member must not be null]`;
  }
  return undefined;
}

/**
 * The refusal AWS gives for these settings on an SQS standard queue, or undefined when it
 * accepts them. Model constraints come first and together, as AWS reports them; the batch
 * window rule only once they all hold.
 */
export function eventSourceMappingRefusal(request: EventSourceMappingRequest): EventSourceMappingRefusal | undefined {
  const batchSize = request.BatchSize ?? L.defaultBatchSize;
  const window = request.MaximumBatchingWindowInSeconds ?? 0;
  // The request's members in the order the API reference lists them.
  const violations = [
    range(request.BatchSize, "batchSize", L.minBatchSize, L.maxBatchSize),
    responseTypes(request.FunctionResponseTypes),
    range(request.MaximumBatchingWindowInSeconds, "maximumBatchingWindowInSeconds", L.minBatchingWindowSeconds, L.maxBatchingWindowSeconds),
    range(request.ScalingConfig?.MaximumConcurrency, "scalingConfig.maximumConcurrency", L.minMaximumConcurrency, L.maxMaximumConcurrency),
  ].filter((v): v is string => v !== undefined);
  if (violations.length > 0) {
    const count = violations.length === 1 ? "1 validation error detected" : `${violations.length} validation errors detected`;
    return { name: "ValidationException", message: `${count}: ${violations.join("; ")}` };
  }
  if (batchSize > L.maxBatchSizeWithoutWindow && window < 1) {
    return {
      name: "InvalidParameterValueException",
      message: "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
    };
  }
  return undefined;
}

/** The refusal as one line: `InvalidParameterValueException: Maximum batch window ...`. */
export function describeRefusal(refusal: EventSourceMappingRefusal): string {
  return `${refusal.name}: ${refusal.message}`;
}

/**
 * The names of the functions' EMF metrics (shared/observability.ts publishes them) that the
 * CloudWatch dashboard and alarms read (infra/cloudwatch.cjs): one list, so the two never drift.
 * docs/metrics.md describes each.
 */
export const EMF_NAMESPACE = "batchline";
/** Powertools adds it to every line, valued by its serviceName. */
export const SERVICE_DIMENSION = "service";
export const SERVICE_NAME = "batchline";
/** The stack's resource prefix (`<service>-<stage>`): stages sharing an account and region keep their numbers apart. */
export const STACK_DIMENSION = "Stack";
export const ROUTE_DIMENSION = "Route";
export const ERROR_KIND_DIMENSION = "ErrorKind";
/** A component by its routes.yml name. */
export const COMPONENT_DIMENSION = "InferenceComponent";

export const JOB_METRICS = {
  succeeded: "JobsSucceeded",
  errors: "JobErrors",
  errorsByKind: "JobErrorsByKind",
  generatedTokens: "GeneratedTokens",
  queueWaitMs: "QueueWaitMs",
  inferenceMs: "InferenceMs",
  endToEndMs: "EndToEndMs",
} as const;
export const DESIRED_COPIES_METRIC = "InferenceComponentDesiredCopies";

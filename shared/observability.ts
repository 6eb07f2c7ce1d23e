import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { OutcomeReport } from "./app/job-outcomes.ts";
import type { Logger as AppLogger } from "./app/logger.ts";
import { parseLogLevel } from "./config.ts";

/** The one logger of the functions (JSON lines); a bad BATCHLINE_LOG_LEVEL fails the import, naming it. */
export const logger = new Logger({ serviceName: "batchline", logLevel: parseLogLevel(process.env) });

/** The use cases' view of the logger. */
export const appLogger: AppLogger = {
  debug: (message, extra) => logger.debug(message, extra ?? {}),
  info: (message, extra) => logger.info(message, extra ?? {}),
  warn: (message, extra) => logger.warn(message, extra ?? {}),
  error: (message, extra) => logger.error(message, extra ?? {}),
};

/** CloudWatch metrics as EMF log lines (namespace and service from POWERTOOLS_* in serverless.yml). */
export const metrics = new Metrics({ namespace: "batchline", serviceName: "batchline" });

/** The route dimension of the job metrics (docs/metrics.md); the dashboard and alarms of infra/cloudwatch.cjs read the same names. */
export const ROUTE_DIMENSION = "Route";
export const COMPONENT_DIMENSION = "InferenceComponent";
export const ERROR_KIND_DIMENSION = "ErrorKind";
/** The stack's resource prefix (`<service>-<stage>`): stages sharing an account and region keep their numbers apart. */
export const STACK_DIMENSION = "Stack";

/**
 * Publishes what a JobOutcomeTally drained as EMF: per route one line with JobsSucceeded,
 * JobErrors, GeneratedTokens and every QueueWaitMs, InferenceMs and EndToEndMs value (CloudWatch
 * takes percentiles of them), one JobErrorsByKind line per error kind, and per component the
 * InferenceComponentDesiredCopies the batcher last read; every line also carries the service and
 * Stack dimensions. Nothing is published for an empty report.
 */
export function publishOutcomes(report: OutcomeReport, stack: string): void {
  const emit = (dimensions: Record<string, string>, add: (m: Metrics) => void) => {
    const line = new Metrics({ namespace: "batchline", serviceName: "batchline", defaultDimensions: { [STACK_DIMENSION]: stack, ...dimensions } });
    add(line);
    line.publishStoredMetrics();
  };
  for (const [route, outcomes] of report.routes) {
    const errors = Object.values(outcomes.errorsByKind).reduce((a, b) => a + b, 0);
    emit({ [ROUTE_DIMENSION]: route }, (m) => {
      m.addMetric("JobsSucceeded", MetricUnit.Count, outcomes.succeeded);
      m.addMetric("JobErrors", MetricUnit.Count, errors);
      m.addMetric("GeneratedTokens", MetricUnit.Count, outcomes.generatedTokens);
      for (const ms of outcomes.queueWaitMs) m.addMetric("QueueWaitMs", MetricUnit.Milliseconds, ms);
      for (const ms of outcomes.inferenceMs) m.addMetric("InferenceMs", MetricUnit.Milliseconds, ms);
      for (const ms of outcomes.endToEndMs) m.addMetric("EndToEndMs", MetricUnit.Milliseconds, ms);
    });
    for (const [kind, count] of Object.entries(outcomes.errorsByKind)) {
      emit({ [ROUTE_DIMENSION]: route, [ERROR_KIND_DIMENSION]: kind }, (m) => m.addMetric("JobErrorsByKind", MetricUnit.Count, count));
    }
  }
  for (const [component, copies] of report.desiredCopies) {
    emit({ [COMPONENT_DIMENSION]: component }, (m) => m.addMetric("InferenceComponentDesiredCopies", MetricUnit.Count, copies));
  }
}

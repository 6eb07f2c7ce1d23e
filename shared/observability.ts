import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { OutcomeReport } from "./app/job-outcomes.ts";
import { COMPONENT_DIMENSION, DESIRED_COPIES_METRIC, EMF_NAMESPACE, ERROR_KIND_DIMENSION, JOB_METRICS, ROUTE_DIMENSION, SERVICE_NAME, STACK_DIMENSION } from "./core/metric-names.ts";
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

/**
 * Publishes what a JobOutcomeTally drained as EMF: per route one line with JobsSucceeded,
 * JobErrors, GeneratedTokens and every QueueWaitMs, InferenceMs and EndToEndMs value (CloudWatch
 * takes percentiles of them), one JobErrorsByKind line per error kind, and per component the
 * InferenceComponentDesiredCopies the batcher last read; every line also carries the service and
 * Stack dimensions. Nothing is published for an empty report.
 */
export function publishOutcomes(report: OutcomeReport, stack: string): void {
  try {
    emitOutcomes(report, stack);
  } catch (error) {
    // Metrics are not worth a record's retry: the jobs were handled.
    logger.warn("could not publish the job metrics", { error: String(error) });
  }
}

function emitOutcomes(report: OutcomeReport, stack: string): void {
  const emit = (dimensions: Record<string, string>, add: (m: Metrics) => void) => {
    const line = new Metrics({ namespace: EMF_NAMESPACE, serviceName: SERVICE_NAME, defaultDimensions: { [STACK_DIMENSION]: stack, ...dimensions } });
    add(line);
    line.publishStoredMetrics();
  };
  for (const [route, outcomes] of report.routes) {
    const errors = Object.values(outcomes.errorsByKind).reduce((a, b) => a + b, 0);
    emit({ [ROUTE_DIMENSION]: route }, (m) => {
      m.addMetric(JOB_METRICS.succeeded, MetricUnit.Count, outcomes.succeeded);
      m.addMetric(JOB_METRICS.errors, MetricUnit.Count, errors);
      m.addMetric(JOB_METRICS.generatedTokens, MetricUnit.Count, outcomes.generatedTokens);
      for (const ms of outcomes.queueWaitMs) m.addMetric(JOB_METRICS.queueWaitMs, MetricUnit.Milliseconds, ms);
      for (const ms of outcomes.inferenceMs) m.addMetric(JOB_METRICS.inferenceMs, MetricUnit.Milliseconds, ms);
      for (const ms of outcomes.endToEndMs) m.addMetric(JOB_METRICS.endToEndMs, MetricUnit.Milliseconds, ms);
    });
    for (const [kind, count] of Object.entries(outcomes.errorsByKind)) {
      emit({ [ROUTE_DIMENSION]: route, [ERROR_KIND_DIMENSION]: kind }, (m) => m.addMetric(JOB_METRICS.errorsByKind, MetricUnit.Count, count));
    }
  }
  for (const [component, copies] of report.desiredCopies) {
    emit({ [COMPONENT_DIMENSION]: component }, (m) => m.addMetric(DESIRED_COPIES_METRIC, MetricUnit.Count, copies));
  }
}

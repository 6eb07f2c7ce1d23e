import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import type { Logger as AppLogger } from "./app/logger.ts";

/** The one logger of the functions (JSON lines; level from BATCHLINE_LOG_LEVEL). */
export const logger = new Logger({
  serviceName: "batchline",
  logLevel: (process.env.BATCHLINE_LOG_LEVEL ?? "INFO") as "INFO",
});

/** The use cases' view of the logger. */
export const appLogger: AppLogger = {
  debug: (message, extra) => logger.debug(message, extra ?? {}),
  info: (message, extra) => logger.info(message, extra ?? {}),
  warn: (message, extra) => logger.warn(message, extra ?? {}),
  error: (message, extra) => logger.error(message, extra ?? {}),
};

/** CloudWatch metrics as EMF log lines (namespace and service from POWERTOOLS_* in serverless.yml). */
export const metrics = new Metrics({ namespace: "batchline", serviceName: "batchline" });

import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
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

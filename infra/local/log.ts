/** The little logging the embedded stack does: one line per event, debug lines only on request. */
export type Logger = {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

export const logLevels = ["DEBUG", "INFO", "WARN", "ERROR", "SILENT"] as const;
export type LogLevel = (typeof logLevels)[number];

/** Writes to stderr so that stdout keeps only what the stack prints on purpose (its endpoints). */
export function consoleLogger(level: LogLevel = "INFO", prefix = "[local]"): Logger {
  const threshold = logLevels.indexOf(level);
  const at = (l: LogLevel) => (message: string) => {
    if (logLevels.indexOf(l) >= threshold) process.stderr.write(`${prefix} ${l.toLowerCase()} ${message}\n`);
  };
  return { debug: at("DEBUG"), info: at("INFO"), warn: at("WARN"), error: at("ERROR") };
}

export const silentLogger: Logger = consoleLogger("SILENT");

export function parseLogLevel(value: string | undefined): LogLevel {
  const level = (value ?? "INFO").toUpperCase();
  const known = logLevels.find((l) => l === level);
  if (!known) throw new Error(`BATCHLINE_LOG_LEVEL must be one of ${logLevels.join(", ")}, got "${value}"`);
  return known;
}

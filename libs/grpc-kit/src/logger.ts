import pino, { type Logger } from "pino";

export type { Logger } from "pino";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Service name, logged on every line as `service`. */
  service: string;
  /** Service version, logged as `version`. Default: "0.1.0". */
  version?: string;
  /** pino level; default from LOG_LEVEL, else "info". */
  level?: string;
  /** Destination stream; default stdout. Tests pass their own to read the lines. */
  destination?: pino.DestinationStream;
}

/**
 * Structured JSON logger (pino) carrying `{service, version}` on every line.
 * Log shapes and counts, never tensors, token arrays or secrets.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? "info";
  const base = { service: opts.service, version: opts.version ?? "0.1.0" };
  return opts.destination
    ? pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, opts.destination)
    : pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime });
}

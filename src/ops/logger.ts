// Structured JSON logs through winston: a fixed message and key-value fields (pool, invocation, task, ...).
import winston from 'winston';

export type Logger = winston.Logger;

/** Field names whose values must never reach a log line, whatever a caller passes. */
const SECRET_FIELDS = /^(password|secret|token|databaseUrl|database_url|connectionString|authorization)$/i;

const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (SECRET_FIELDS.test(key)) info[key] = '[redacted]';
  }
  return info;
});

export interface LoggerOptions {
  level?: string;
  /** Where lines go. Defaults to stderr, so that stdout stays free for command output. */
  stream?: NodeJS.WritableStream;
  component?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LTP_LOG_LEVEL ?? 'info';
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] });
  return winston.createLogger({
    level,
    defaultMeta: options.component ? { component: options.component } : undefined,
    format: winston.format.combine(redact(), winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json()),
    transports: [transport],
  });
}

/** A logger that drops everything, for unit tests of code that takes a logger. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

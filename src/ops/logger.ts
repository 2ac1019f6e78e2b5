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
  return skipBelowLevel(
    winston.createLogger({
      level,
      defaultMeta: options.component ? { component: options.component } : undefined,
      format: winston.format.combine(redact(), winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json()),
      transports: [transport],
    }),
  );
}

/**
 * Makes a line below the logger's level cost a level check, not a formatted line. Winston runs every line
 * through the logger's formats (here the redaction, a timestamp and JSON) before its transport drops it for
 * its level: at level warn, a dispatch pass's info line still cost 26 µs, 2.6 ms of the controller's main
 * thread while 100 pools' burst was being invoked (CPU profile of the scale benchmark). The level methods
 * (`info`, `debug`, ...) of the logger, and of its children, which inherit them, now ask isLevelEnabled
 * first; it reads the level as it is at the time, so a level changed later still applies.
 */
function skipBelowLevel(logger: winston.Logger): winston.Logger {
  const methods = logger as unknown as Record<string, (this: winston.Logger, ...args: unknown[]) => winston.Logger>;
  for (const level of Object.keys(logger.levels)) {
    const write = methods[level];
    if (typeof write !== 'function') continue;
    methods[level] = function (this: winston.Logger, ...args: unknown[]) {
      return this.isLevelEnabled(level) ? write.apply(this, args) : this;
    };
  }
  return logger;
}

/** A logger that drops everything, for unit tests of code that takes a logger. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

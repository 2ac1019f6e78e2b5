// The worker takes any logger with info, warn and error that takes the message first and the fields
// second (console, AWS Lambda Powertools' Logger, winston; pino takes the fields first, so it needs the
// adapter the README shows). Without one it writes JSON lines to stdout, which CloudWatch Logs keeps one
// event per line.

export type LogFields = Record<string, unknown>;

export interface WorkerLogger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** JSON lines on stdout: time, level, message, then the fields (the invocation, the AWS request id, ...). */
export function jsonLogger(options: { level?: string; write?: (line: string) => void } = {}): WorkerLogger {
  const wanted = (options.level ?? process.env.LTP_LOG_LEVEL ?? 'info') as Level;
  const threshold = ORDER[wanted] ?? ORDER.info;
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const log =
    (level: Level) =>
    (message: string, fields: LogFields = {}) => {
      if (ORDER[level] < threshold) return;
      write(logLine({ timestamp: new Date().toISOString(), level, message, ...fields }));
    };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}

/**
 * One JSON line, whatever the fields hold: an Error as its name, message and stack (JSON.stringify gives {}),
 * a bigint as a string, and a cycle as "[Circular]". A log line must never throw: it would fail the task that
 * logged it.
 */
export function logLine(record: LogFields): string {
  const ancestors: object[] = [];
  try {
    return JSON.stringify(record, function (this: unknown, _key, value: unknown) {
      if (typeof value === 'bigint') return value.toString();
      if (typeof value !== 'object' || value === null) return value;
      // `this` is the object holding the value: the ancestors are the chain down to it.
      while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
      if (ancestors.includes(value)) return '[Circular]';
      ancestors.push(value);
      if (value instanceof Error) {
        const { name, message, stack } = value;
        const cause = (value as { cause?: unknown }).cause;
        // Its own fields (a code, a detail) first: name, message and stack are not enumerable on an Error.
        const plain = { ...value, name, message, ...(stack ? { stack } : {}), ...(cause !== undefined ? { cause } : {}) };
        ancestors.push(plain);
        return plain;
      }
      return value;
    });
  } catch (error) {
    return JSON.stringify({
      ...('level' in record ? { level: record.level } : {}),
      message: String(record.message),
      logError: String(error),
    });
  }
}

/** A logger that adds `fields` to every line, over any logger. */
export function withFields(logger: WorkerLogger, fields: LogFields): WorkerLogger {
  return {
    info: (message, more) => logger.info(message, { ...fields, ...more }),
    warn: (message, more) => logger.warn(message, { ...fields, ...more }),
    error: (message, more) => logger.error(message, { ...fields, ...more }),
  };
}

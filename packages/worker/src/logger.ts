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
      write(JSON.stringify({ timestamp: new Date().toISOString(), level, message, ...fields }));
    };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}

/** A logger that adds `fields` to every line, over any logger. */
export function withFields(logger: WorkerLogger, fields: LogFields): WorkerLogger {
  return {
    info: (message, more) => logger.info(message, { ...fields, ...more }),
    warn: (message, more) => logger.warn(message, { ...fields, ...more }),
    error: (message, more) => logger.error(message, { ...fields, ...more }),
  };
}

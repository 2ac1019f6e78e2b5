// Where a function's stdout and stderr go: the runtime's logger (debug level) and a bounded per-function
// buffer of the last lines, so output is neither lost nor spilled over a test run.

export interface LogLine {
  at: number;
  function: string;
  stream: 'stdout' | 'stderr';
  pid: number;
  /** The invocation the process was running when it wrote the line, if any. */
  requestId?: string;
  line: string;
}

/** The last `limit` lines of one function. */
export class LogBuffer {
  private lines: LogLine[] = [];
  constructor(private readonly limit: number) {}

  push(line: LogLine): void {
    this.lines.push(line);
    if (this.lines.length > this.limit) this.lines.splice(0, this.lines.length - this.limit);
  }

  all(): LogLine[] {
    return [...this.lines];
  }

  forRequest(requestId: string): LogLine[] {
    return this.lines.filter((line) => line.requestId === requestId);
  }
}

/** Splits a byte stream into lines; `flush` emits a last unterminated line. */
export function lineSplitter(onLine: (line: string) => void): { write(chunk: Buffer | string): void; flush(): void } {
  let rest = '';
  return {
    write(chunk) {
      rest += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let newline = rest.indexOf('\n');
      while (newline !== -1) {
        onLine(rest.slice(0, newline).replace(/\r$/, ''));
        rest = rest.slice(newline + 1);
        newline = rest.indexOf('\n');
      }
      // A runaway line without newlines must not grow without bound.
      if (rest.length > 64 * 1024) {
        onLine(rest);
        rest = '';
      }
    },
    flush() {
      if (rest !== '') onLine(rest);
      rest = '';
    },
  };
}

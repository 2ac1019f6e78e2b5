// Options and argument parsers that several commands share, so each flag reads and fails the same way
// everywhere. Parsers throw commander's InvalidArgumentError: commander names the flag in the message.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { QUEUE_PATTERN } from '../api/types.ts';
import { DurationError, parseDurationSeconds } from '../api/duration.ts';
import { DatabaseUrlError, parseDatabaseUrl, type DatabaseTarget } from '../store/database-url.ts';
import { UsageError } from './command.ts';

export const OUTPUT_FORMATS = ['table', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** `-o table|json`: every command that prints data has it. */
export function outputOption(): Option {
  return new Option('-o, --output <format>', 'print a table for people, or JSON for scripts').choices(OUTPUT_FORMATS).default('table');
}

/** `--database-url`, falling back to DATABASE_URL (commander reads the environment and says so in the help). */
export function databaseUrlOption(what = 'the PostgreSQL database that holds the tasks'): Option {
  return new Option('--database-url <url>', `${what}: postgres://USER:PASSWORD@HOST:PORT/DATABASE`).env('DATABASE_URL');
}

/** The database a command was given, or a usage error saying how to give one. Messages never show the URL. */
export function databaseFrom(command: Command): DatabaseTarget {
  const value: unknown = command.getOptionValue('databaseUrl');
  const source = command.getOptionValueSource('databaseUrl') === 'env' ? 'DATABASE_URL' : '--database-url';
  if (typeof value !== 'string' || value.trim() === '') {
    throw new UsageError('no database: pass --database-url postgres://USER:PASSWORD@HOST:PORT/DATABASE or set DATABASE_URL');
  }
  try {
    return parseDatabaseUrl(value, source);
  } catch (error) {
    if (error instanceof DatabaseUrlError) throw new UsageError(error.message);
    throw error;
  }
}

/** Whether the command was given a database at all (the controller runs without one). */
export function hasDatabase(command: Command): boolean {
  const value: unknown = command.getOptionValue('databaseUrl');
  return typeof value === 'string' && value.trim() !== '';
}

export function positiveInt(max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
      throw new InvalidArgumentError(`must be a whole number from 1 to ${max}`);
    }
    return n;
  };
}

export function nonNegativeInt(max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n > max) {
      throw new InvalidArgumentError(`must be a whole number from 0 to ${max}`);
    }
    return n;
  };
}

/** A task id (a positive integer): for variadic id arguments, collected into a list. */
export function taskIds(value: string, previous: number[] = []): number[] {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a task id (a positive whole number)`);
  }
  return [...previous, n];
}

export function queueName(value: string): string {
  if (!QUEUE_PATTERN.test(value)) {
    throw new InvalidArgumentError('a queue name is 1-128 letters, digits or . _ : / - and starts with a letter or digit');
  }
  return value;
}

/**
 * A JSON value, checked and kept as the text given: parsed here only to refuse what Postgres cannot store, and
 * sent to it as text, so that its jsonb keeps numbers that a JavaScript number would round (9007199254740993).
 */
export function jsonText(value: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('must be JSON, e.g. \'{"image":"cat.png"}\'');
  }
  const refused = unstorable(parsed);
  if (refused) throw new InvalidArgumentError(refused);
  return value;
}

/**
 * Why Postgres would not store a JSON value, if it would not: its jsonb holds neither a NUL character (\u0000)
 * nor a lone surrogate (\ud800 to \udfff without its pair, which is not Unicode). Either failed the insert
 * with Postgres's "invalid input syntax for type json", exit 1, after the command had connected.
 */
function unstorable(value: unknown): string | undefined {
  const strings: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') strings.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null)
      for (const [key, inner] of Object.entries(v)) {
        strings.push(key);
        walk(inner);
      }
  };
  walk(value);
  if (strings.some((s) => s.includes('\0'))) return 'must not contain \\u0000 (a NUL character): Postgres cannot store it';
  // With the u flag a paired surrogate is one code point, so the class matches only a lone one.
  if (strings.some((s) => /[\ud800-\udfff]/u.test(s)))
    return 'must not contain a lone surrogate (\\ud800 to \\udfff without its pair): it is not Unicode, and Postgres cannot store it';
  return undefined;
}

export function durationSeconds(flag: string, options: { maxSeconds?: number; maxText?: string } = {}): (value: string) => number {
  return (value) => {
    let seconds: number;
    try {
      seconds = parseDurationSeconds(value, flag);
    } catch (error) {
      if (error instanceof DurationError) throw new InvalidArgumentError(error.message);
      throw error;
    }
    if (options.maxSeconds !== undefined && seconds > options.maxSeconds) {
      throw new InvalidArgumentError(`${flag} must be at most ${options.maxText ?? `${options.maxSeconds}s`}`);
    }
    return seconds;
  };
}

/** A comma-separated list (empty items dropped). */
export function commaList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

// Durations in flags and Helm values: a whole number followed by d, h, m or s ("7d", "36h", "90s"), or a bare
// number of seconds. "0" means none.

const UNIT_SECONDS: Record<string, number> = { d: 86_400, h: 3_600, m: 60, s: 1 };

export class DurationError extends Error {
  override name = 'DurationError';
}

export function parseDurationSeconds(text: string, what: string): number {
  const match = /^\s*(\d+)\s*([dhms]?)\s*$/.exec(text);
  if (!match) throw new DurationError(`${what} must be a duration like 7d, 36h, 90m or 3600s (got ${JSON.stringify(text)})`);
  const [, amount = '0', unit = ''] = match;
  const seconds = Number(amount) * (UNIT_SECONDS[unit === '' ? 's' : unit] ?? 1);
  if (!Number.isSafeInteger(seconds)) throw new DurationError(`${what} is too long (got ${JSON.stringify(text)})`);
  return seconds;
}

// Which failed writes are worth trying again (the database could not be reached or could not serve the
// statement now), and which refused the value itself. Judged by SQLSTATE class or socket error code, never
// by the message.

const RETRYABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
]);

/** The SQLSTATE of a database error, or the errno code of a socket error. */
export function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

/**
 * True for connection exceptions (08), transaction rollbacks such as deadlocks and serialization failures
 * (40), insufficient resources (53), lock not available (55), operator intervention and timeouts (57),
 * system errors (58), a read-only transaction (25006: a connection still on a primary that a failover
 * demoted, for the seconds until it is dropped), socket errors, and errors that carry no code at all (a broken
 * connection, or no connection free in the pool within its timeout). Data, integrity and syntax errors are
 * not retried.
 */
export function isRetryableWriteError(error: unknown): boolean {
  const code = errorCode(error);
  if (code === undefined || code === null) return error instanceof Error && !(error instanceof TypeError) && !(error instanceof RangeError);
  if (typeof code !== 'string') return false;
  if (RETRYABLE_ERRNOS.has(code) || code === '25006') return true;
  return /^(08|40|53|55|57|58)/.test(code);
}

/**
 * True when the database refused a value itself: a data exception (22: a character its encoding cannot
 * hold, malformed JSON) or a program limit (54: a value too large). Sending the same value again changes
 * nothing, so the write is not retried; only the task whose value it was fails.
 */
export function isRefusedValueError(error: unknown): boolean {
  const code = errorCode(error);
  return typeof code === 'string' && /^(22|54)/.test(code);
}

// Which failed writes are worth trying again: the database could not be reached or could not serve the
// statement now. Judged by SQLSTATE class or socket error code, never by the message.

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

/**
 * True for connection exceptions (08), transaction rollbacks such as deadlocks and serialization failures
 * (40), insufficient resources (53), lock not available (55), operator intervention and timeouts (57),
 * system errors (58), socket errors, and errors that carry no code at all (a broken connection, or no
 * connection free in the pool within its timeout). Data, integrity and syntax errors are not retried.
 */
export function isRetryableWriteError(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  if (code === undefined || code === null) return error instanceof Error && !(error instanceof TypeError) && !(error instanceof RangeError);
  if (typeof code !== 'string') return false;
  if (RETRYABLE_ERRNOS.has(code)) return true;
  return /^(08|40|53|55|57|58)/.test(code);
}

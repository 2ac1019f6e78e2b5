// One line about an error, safe for logs, status and events: the first line of its message, with any
// database URL (which may carry a password) replaced.
export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return (text.split('\n')[0] ?? '').replace(/postgres(ql)?:\/\/\S+/g, '<database url>').slice(0, 300);
}

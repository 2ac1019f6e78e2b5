// Values Postgres can store. A text column refuses the NUL character, and jsonb refuses the escape \u0000
// and a lone UTF-16 surrogate (half of a character that a string was cut through). Either refusal is a data
// error that no retry can fix, so the worker replaces those characters before it writes: each becomes
// U+FFFD, the replacement character, as String.prototype.toWellFormed does for lone surrogates.

const REPLACEMENT = '\ufffd';
const NUL = '\u0000';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `text` with every NUL and every lone surrogate replaced by U+FFFD; the same string when it has none. */
export function storableText(text: string): string {
  return text.replaceAll(NUL, REPLACEMENT).replace(LONE_SURROGATE, REPLACEMENT);
}

/** Object keys can carry the same characters as values; JSON.stringify lets a replacer rebuild the object. */
function storableValue(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const entries = Object.entries(value);
  if (entries.every(([key]) => storableText(key) === key)) return value;
  return Object.fromEntries(entries.map(([key, v]) => [storableText(key), v]));
}

/** A handler's result as JSON that jsonb accepts (JSON.stringify's own rules otherwise: toJSON, no functions). */
export function storableJson(value: unknown): string {
  return JSON.stringify(value ?? null, storableValue);
}

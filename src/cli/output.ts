// How commands print: aligned columns for people (as kubectl prints), or JSON for scripts. Pure
// formatting; the commands write the strings.

export interface Column<T> {
  header: string;
  value(row: T): string;
}

/** Rows under upper-case headers, each column as wide as its widest cell, three spaces apart. */
export function table<T>(rows: readonly T[], columns: ReadonlyArray<Column<T>>): string {
  const cells = [columns.map((c) => c.header.toUpperCase()), ...rows.map((r) => columns.map((c) => oneLine(c.value(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => (line[i] ?? '').length)));
  return cells.map((line) => line.map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('   ')).join('\n');
}

/** `label: value` lines with the values aligned. */
export function fields(entries: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...entries.map(([label]) => label.length)) + 1;
  return entries.map(([label, value]) => `${`${label}:`.padEnd(width)}  ${value}`).join('\n');
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** A cell never breaks a line of the table. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

/** At most `max` characters, with an ellipsis when cut. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** The time since `from` as kubectl shows an age: 42s, 5m, 3h, 12d. Empty when unknown. */
export function age(from: Date | string | undefined | null, now: Date = new Date()): string {
  if (from === undefined || from === null || from === '') return '';
  const at = typeof from === 'string' ? new Date(from) : from;
  if (Number.isNaN(at.getTime())) return '';
  const seconds = Math.max(0, Math.floor((now.getTime() - at.getTime()) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 120 * 60) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** An ISO timestamp, or "-" when there is none. */
export function timestamp(at: Date | string | null | undefined): string {
  if (at === undefined || at === null || at === '') return '-';
  const date = typeof at === 'string' ? new Date(at) : at;
  return Number.isNaN(date.getTime()) ? '-' : date.toISOString();
}

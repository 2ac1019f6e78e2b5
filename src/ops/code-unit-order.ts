// Sorting names for machines (command files, condition types): by UTF-16 code units, the same on every host.
// Not localeCompare: the first collation loads ICU's collation data, about 2 MB resident in the process that
// does it, the controller's included.

/** A sort comparator by UTF-16 code units. */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

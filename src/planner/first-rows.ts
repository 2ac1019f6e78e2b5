// Which of a pass's new rows are committed first, so that invoking starts while the rest are inserted.
// Pure: no I/O, no clock.
//
// Inserting 1,000 rows takes Postgres 6 to 9 ms (four index entries and a sequence value each), and nothing
// can be invoked before the rows are committed: a large pass commits its first rows with its decision, starts
// invoking them, and inserts the rest on the same connection, still holding its pools' locks (pass-act.ts).

export interface FirstRows {
  /** Rows each pool's pass inserts and commits with its decision. */
  first: number[];
  /** Rows each pool's pass inserts right after that commit. */
  rest: number[];
}

/**
 * Splits each pool's dispatch (`counts`, in the batch's order) into a first part of `firstRows` rows in all,
 * filled pool by pool, and the rest. A pass of at most twice `firstRows` rows is not split: the saving would
 * be a millisecond or two, not worth a second statement.
 */
export function splitFirstRows(counts: readonly number[], firstRows: number): FirstRows {
  const total = counts.reduce((sum, n) => sum + Math.max(0, n), 0);
  if (!(firstRows > 0) || total <= 2 * firstRows) return { first: counts.map((n) => Math.max(0, n)), rest: counts.map(() => 0) };
  let left = Math.floor(firstRows);
  const first = counts.map((n) => {
    const take = Math.min(Math.max(0, n), left);
    left -= take;
    return take;
  });
  return { first, rest: counts.map((n, i) => Math.max(0, n) - (first[i] ?? 0)) };
}

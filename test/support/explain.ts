// The shared buffers a statement touched, read from EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON): what the
// read-bound tests assert, as it does not move with the machine's speed.
import type { Queryable } from '../../src/store/db.ts';

/** EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of `text` with `values`: the shared buffers it hit or read. */
export async function explainBuffers(db: Queryable, text: string, values?: unknown[]): Promise<number> {
  const explained = await db.query<{
    'QUERY PLAN': Array<{ Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }>;
  }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, values);
  const plan = explained.rows[0]?.['QUERY PLAN'][0]?.Plan;
  if (!plan) throw new Error(`EXPLAIN returned no plan for: ${text}`);
  return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
}

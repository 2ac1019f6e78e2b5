// Every live invocation was in two partial indexes of the same rows: invocations_live_by_pool
// (pool_uid, status, created_at) and invocations_live_by_pool_id (pool_uid, id), which the pass's snapshot
// reads. Status is a key column of the first, so each step of an invocation's life (created, pending, ready,
// running) wrote a new entry into both. The reads that used the first (a pool's live rows counted by state,
// the ones waiting to start, the deferred ones, the pools with live rows) read the pool's live rows through
// the second just as well, bounded by those rows (EXPLAIN on 600,000 finished rows of 200 pools and 1,550
// live ones of one pool: each reads 35 buffers, 0.2 to 0.3 ms). Measured on the local stack's Postgres, four
// rounds of 60 statements of 1,000 rows each, medians per round: a pass's insert of its rows 8.1 to 11.2 ms
// with both indexes, 7.1 to 8.8 ms with one; their marking as invoked 17.3 to 25.6 ms, 14.6 to 16.1 ms.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
DROP INDEX ltp.invocations_live_by_pool;
`;

const DOWN = `
CREATE INDEX invocations_live_by_pool ON ltp.invocations (pool_uid, status, created_at)
  WHERE status IN ('created', 'pending', 'ready', 'running');
`;

export class OneLiveIndex1764979200000 implements MigrationInterface {
  name = 'OneLiveIndex1764979200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

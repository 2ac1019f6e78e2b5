// Indexes that match the pass's reads of live rows exactly, so that no estimate can make another plan look
// cheaper. The snapshot reads a pool's live invocations in id order (LIMIT 2,000): with only
// invocations_live_by_pool (pool_uid, status, created_at) to offer, Postgres walked invocations_pkey in id
// order and filtered on pool_uid instead, reading every invocation in the table for each pool (measured: 7,200
// rows read per pool, 4.2 ms, 543 ms for a batch of 100 pools, on a table of 7,200 invocations). The stranded
// leases are now read by the pool's queue, in id order too.
//
// Built without CONCURRENTLY (a migration runs in a transaction): each build reads the table once and blocks
// writes to it meanwhile, seconds for millions of rows; the indexes themselves hold only live rows.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
CREATE INDEX invocations_live_by_pool_id ON ltp.invocations (pool_uid, id)
  WHERE status IN ('created', 'pending', 'ready', 'running');
CREATE INDEX tasks_leased_by_queue_id ON ltp.tasks (queue, id) WHERE status = 'leased';
DROP INDEX ltp.tasks_leased_by_queue;
`;

const DOWN = `
CREATE INDEX tasks_leased_by_queue ON ltp.tasks (queue) WHERE status = 'leased';
DROP INDEX ltp.tasks_leased_by_queue_id;
DROP INDEX ltp.invocations_live_by_pool_id;
`;

export class PassPlanIndexes1764892800000 implements MigrationInterface {
  name = 'PassPlanIndexes1764892800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

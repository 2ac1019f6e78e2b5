// The status write counts a pool's orphaned and wasted invocations of the last minutes, and the pass and
// the status write look for the latest invoke Lambda rejected. Through
// invocations_finished_by_pool it read every invocation that finished in that window and kept the few that
// matched: with a busy pool's history (3 million finished invocations, thousands an hour) that cost grew
// with the pool's throughput. These partial indexes hold only the rows those reads want, so they read what
// they count.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
CREATE INDEX invocations_orphaned_by_pool ON ltp.invocations (pool_uid, finished_at) WHERE status = 'orphaned';
CREATE INDEX invocations_wasted_by_pool ON ltp.invocations (pool_uid, finished_at)
  WHERE status IN ('succeeded', 'failed') AND ready_at IS NOT NULL AND tasks_started = 0;
CREATE INDEX invocations_rejected_by_pool ON ltp.invocations (pool_uid, finished_at)
  WHERE status = 'failed' AND ready_at IS NULL AND error_code IS NOT NULL;
`;

const DOWN = `
DROP INDEX ltp.invocations_rejected_by_pool;
DROP INDEX ltp.invocations_wasted_by_pool;
DROP INDEX ltp.invocations_orphaned_by_pool;
`;

export class RecentTroubleIndexes1764720000000 implements MigrationInterface {
  name = 'RecentTroubleIndexes1764720000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

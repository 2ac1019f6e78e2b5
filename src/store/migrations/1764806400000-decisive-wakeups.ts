// The rows Lambda accepted (created -> pending, the controller's own markInvoked) no longer wake their pool:
// the controller knows it just invoked them, and the pass that did so looks again at their start deadline
// itself. At a thousand pools that wake-up cost every pool a second pass after each dispatch, for nothing.
// Every other change of state still wakes the pool (a worker's claim, its start, its end); the totals kept
// by the same trigger are unchanged.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
CREATE OR REPLACE FUNCTION ltp.notify_invocations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_invocations', p.pool_uid)
    FROM (SELECT DISTINCT n.pool_uid FROM updated n JOIN previous o ON o.id = n.id
          WHERE n.status <> o.status AND n.status <> 'pending') p;
  INSERT INTO ltp.pool_totals AS t (pool_uid, succeeded, failed, orphaned, terminated, wasted)
    SELECT n.pool_uid,
           count(*) FILTER (WHERE n.status = 'succeeded'), count(*) FILTER (WHERE n.status = 'failed'),
           count(*) FILTER (WHERE n.status = 'orphaned'), count(*) FILTER (WHERE n.status = 'terminated'),
           count(*) FILTER (WHERE n.status IN ('succeeded', 'failed') AND n.ready_at IS NOT NULL AND n.tasks_started = 0)
      FROM updated n JOIN previous o ON o.id = n.id
     WHERE n.status IN ('succeeded', 'failed', 'orphaned', 'terminated') AND o.status <> n.status
     GROUP BY n.pool_uid ORDER BY n.pool_uid
  ON CONFLICT (pool_uid) DO UPDATE SET
    succeeded = t.succeeded + excluded.succeeded, failed = t.failed + excluded.failed,
    orphaned = t.orphaned + excluded.orphaned, terminated = t.terminated + excluded.terminated,
    wasted = t.wasted + excluded.wasted;
  RETURN NULL;
END $$;
`;

const DOWN = `
CREATE OR REPLACE FUNCTION ltp.notify_invocations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_invocations', p.pool_uid)
    FROM (SELECT DISTINCT n.pool_uid FROM updated n JOIN previous o ON o.id = n.id
          WHERE n.status <> o.status) p;
  INSERT INTO ltp.pool_totals AS t (pool_uid, succeeded, failed, orphaned, terminated, wasted)
    SELECT n.pool_uid,
           count(*) FILTER (WHERE n.status = 'succeeded'), count(*) FILTER (WHERE n.status = 'failed'),
           count(*) FILTER (WHERE n.status = 'orphaned'), count(*) FILTER (WHERE n.status = 'terminated'),
           count(*) FILTER (WHERE n.status IN ('succeeded', 'failed') AND n.ready_at IS NOT NULL AND n.tasks_started = 0)
      FROM updated n JOIN previous o ON o.id = n.id
     WHERE n.status IN ('succeeded', 'failed', 'orphaned', 'terminated') AND o.status <> n.status
     GROUP BY n.pool_uid ORDER BY n.pool_uid
  ON CONFLICT (pool_uid) DO UPDATE SET
    succeeded = t.succeeded + excluded.succeeded, failed = t.failed + excluded.failed,
    orphaned = t.orphaned + excluded.orphaned, terminated = t.terminated + excluded.terminated,
    wasted = t.wasted + excluded.wasted;
  RETURN NULL;
END $$;
`;

export class DecisiveWakeups1764806400000 implements MigrationInterface {
  name = 'DecisiveWakeups1764806400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

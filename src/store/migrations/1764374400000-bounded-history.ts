// Scale (issue 8): nothing a pass or a status write runs may read history. Finished totals are kept in
// counter rows maintained by the same statement-level triggers that send the wake-ups; every other read
// is bounded by live rows or a recent window, through the indexes below. Retention deletes finished rows
// by age, so the foreign key from tasks to invocations gets the index a delete needs.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
-- Deleting an invocation checks that no task points at it: without this index that reads every task.
CREATE INDEX tasks_by_invocation ON ltp.tasks (invocation_id);
-- Finished rows by age, per queue and per pool: retention, and the recent windows of status.
CREATE INDEX tasks_finished_by_queue ON ltp.tasks (queue, finished_at) WHERE status IN ('done', 'failed');
CREATE INDEX invocations_finished_by_pool ON ltp.invocations (pool_uid, finished_at) WHERE finished_at IS NOT NULL;
-- Leased tasks per queue, for status (bounded by the live leases).
CREATE INDEX tasks_leased_by_queue ON ltp.tasks (queue) WHERE status = 'leased';
-- Indexes that served counts over history, which nothing runs any more.
DROP INDEX ltp.tasks_queue_status;
DROP INDEX ltp.invocations_pool_status;
DROP INDEX ltp.invocations_wasted;

-- Totals since a queue or a pool began: kept by the triggers below, never counted from rows, and not
-- reduced when retention deletes old rows.
CREATE TABLE ltp.queue_totals (
  queue   text PRIMARY KEY,
  done    bigint NOT NULL DEFAULT 0,
  failed  bigint NOT NULL DEFAULT 0
);
CREATE TABLE ltp.pool_totals (
  pool_uid    text PRIMARY KEY,
  succeeded   bigint NOT NULL DEFAULT 0,
  failed      bigint NOT NULL DEFAULT 0,
  orphaned    bigint NOT NULL DEFAULT 0,
  terminated  bigint NOT NULL DEFAULT 0,
  -- finished by a worker having started no task
  wasted      bigint NOT NULL DEFAULT 0
);
INSERT INTO ltp.queue_totals (queue, done, failed)
  SELECT queue, count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed')
    FROM ltp.tasks GROUP BY queue;
INSERT INTO ltp.pool_totals (pool_uid, succeeded, failed, orphaned, terminated, wasted)
  SELECT pool_uid, count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
         count(*) FILTER (WHERE status = 'orphaned'), count(*) FILTER (WHERE status = 'terminated'),
         count(*) FILTER (WHERE status IN ('succeeded', 'failed') AND ready_at IS NOT NULL AND tasks_started = 0)
    FROM ltp.invocations GROUP BY pool_uid;

-- One statement-level trigger per table after UPDATE: the wake-up and the totals from one transition table.
-- Counter rows are locked in key order, so two statements can never deadlock on them.
CREATE OR REPLACE FUNCTION ltp.notify_tasks_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_tasks', q.queue)
    FROM (SELECT DISTINCT n.queue FROM updated n JOIN previous o ON o.id = n.id
          WHERE n.status = 'created' AND o.status <> 'created') q;
  INSERT INTO ltp.queue_totals AS t (queue, done, failed)
    SELECT n.queue, count(*) FILTER (WHERE n.status = 'done'), count(*) FILTER (WHERE n.status = 'failed')
      FROM updated n JOIN previous o ON o.id = n.id
     WHERE n.status IN ('done', 'failed') AND o.status <> n.status
     GROUP BY n.queue ORDER BY n.queue
  ON CONFLICT (queue) DO UPDATE SET done = t.done + excluded.done, failed = t.failed + excluded.failed;
  RETURN NULL;
END $$;

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

COMMENT ON TABLE ltp.queue_totals IS 'Tasks of each queue that ended done or failed, since the queue began (kept by a trigger; retention does not reduce it).';
COMMENT ON TABLE ltp.pool_totals IS 'Invocations of each pool by terminal state, and wasted ones, since the pool began (kept by a trigger).';
`;

const DOWN = `
CREATE OR REPLACE FUNCTION ltp.notify_tasks_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_tasks', q.queue)
    FROM (SELECT DISTINCT n.queue FROM updated n JOIN previous o ON o.id = n.id
          WHERE n.status = 'created' AND o.status <> 'created') q;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION ltp.notify_invocations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_invocations', p.pool_uid)
    FROM (SELECT DISTINCT n.pool_uid FROM updated n JOIN previous o ON o.id = n.id
          WHERE n.status <> o.status) p;
  RETURN NULL;
END $$;
DROP TABLE ltp.pool_totals;
DROP TABLE ltp.queue_totals;
CREATE INDEX invocations_wasted ON ltp.invocations (pool_uid) WHERE status = 'succeeded' AND tasks_leased = 0;
CREATE INDEX invocations_pool_status ON ltp.invocations (pool_uid, status);
CREATE INDEX tasks_queue_status ON ltp.tasks (queue, status);
DROP INDEX ltp.tasks_leased_by_queue;
DROP INDEX ltp.invocations_finished_by_pool;
DROP INDEX ltp.tasks_finished_by_queue;
DROP INDEX ltp.tasks_by_invocation;
`;

export class BoundedHistory1764374400000 implements MigrationInterface {
  name = 'BoundedHistory1764374400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

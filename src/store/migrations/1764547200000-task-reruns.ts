// Operations on tasks without SQL (issue 12): a task can be cancelled while it is still `created`, and a
// finished task can be re-run. Neither breaks the rule that a finished row never changes:
//   - `cancelled` is a new terminal state, reachable only from `created` (a leased task is being worked and
//     ends done or failed as usual); the reason is kept in `cancel_reason`;
//   - a re-run is a NEW row, a copy of the old one's queue, payload and attempt limit, whose `retry_of`
//     names the task it re-runs. A unique index lets each task be re-run once: to try again after a re-run
//     failed, re-run the re-run. No foreign key: retention deletes old rows on its own schedule.
// The totals (ltp.queue_totals) count cancelled tasks too, and retention deletes them like done and failed.
//
// `ALTER TYPE ... ADD VALUE` may not be followed, in the same transaction, by any statement that uses the new
// value (SQL function bodies are analysed when created). So this migration runs outside TypeORM's
// transaction: it adds the value on its own (IF NOT EXISTS: a rerun after a failure finds it there), then
// makes every other change in one transaction of its own.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const ADD_STATE = `ALTER TYPE ltp.task_status ADD VALUE IF NOT EXISTS 'cancelled' AFTER 'failed'`;

const UP = `
ALTER TABLE ltp.tasks
  ADD COLUMN retry_of bigint,
  ADD COLUMN cancel_reason text;
CREATE UNIQUE INDEX tasks_retry_of ON ltp.tasks (retry_of) WHERE retry_of IS NOT NULL;
ALTER TABLE ltp.tasks ADD CONSTRAINT cancelled_task_has_reason CHECK (status <> 'cancelled' OR cancel_reason IS NOT NULL);

CREATE OR REPLACE FUNCTION ltp.task_transition_allowed(from_status ltp.task_status, to_status ltp.task_status)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT from_status = to_status OR CASE from_status
    WHEN 'created' THEN to_status IN ('leased', 'cancelled')
    WHEN 'leased'  THEN to_status IN ('done', 'failed', 'created')
    ELSE false
  END
$$;

-- Finished rows by age, per queue: retention and recent windows now include cancelled tasks.
DROP INDEX ltp.tasks_finished_by_queue;
CREATE INDEX tasks_finished_by_queue ON ltp.tasks (queue, finished_at) WHERE status IN ('done', 'failed', 'cancelled');

ALTER TABLE ltp.queue_totals ADD COLUMN cancelled bigint NOT NULL DEFAULT 0;

-- The wake-up also goes out when tasks are cancelled, so the pool's backlog and counts are written at once.
CREATE OR REPLACE FUNCTION ltp.notify_tasks_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_tasks', q.queue)
    FROM (SELECT DISTINCT n.queue FROM updated n JOIN previous o ON o.id = n.id
          WHERE n.status IN ('created', 'cancelled') AND o.status <> n.status) q;
  INSERT INTO ltp.queue_totals AS t (queue, done, failed, cancelled)
    SELECT n.queue, count(*) FILTER (WHERE n.status = 'done'), count(*) FILTER (WHERE n.status = 'failed'),
           count(*) FILTER (WHERE n.status = 'cancelled')
      FROM updated n JOIN previous o ON o.id = n.id
     WHERE n.status IN ('done', 'failed', 'cancelled') AND o.status <> n.status
     GROUP BY n.queue ORDER BY n.queue
  ON CONFLICT (queue) DO UPDATE SET
    done = t.done + excluded.done, failed = t.failed + excluded.failed, cancelled = t.cancelled + excluded.cancelled;
  RETURN NULL;
END $$;

COMMENT ON COLUMN ltp.tasks.retry_of IS 'The task this row re-runs (lambda-task-pool retry); each task is re-run at most once.';
COMMENT ON COLUMN ltp.tasks.cancel_reason IS 'Why the task was cancelled (lambda-task-pool cancel --reason).';
COMMENT ON TABLE ltp.queue_totals IS 'Tasks of each queue that ended done, failed or cancelled, since the queue began (kept by a trigger; retention does not reduce it).';
`;

const DOWN = `
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
ALTER TABLE ltp.queue_totals DROP COLUMN cancelled;
DROP INDEX ltp.tasks_finished_by_queue;
CREATE INDEX tasks_finished_by_queue ON ltp.tasks (queue, finished_at) WHERE status IN ('done', 'failed');
CREATE OR REPLACE FUNCTION ltp.task_transition_allowed(from_status ltp.task_status, to_status ltp.task_status)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT from_status = to_status OR CASE from_status
    WHEN 'created' THEN to_status IN ('leased')
    WHEN 'leased'  THEN to_status IN ('done', 'failed', 'created')
    ELSE false
  END
$$;
ALTER TABLE ltp.tasks DROP CONSTRAINT cancelled_task_has_reason;
DROP INDEX ltp.tasks_retry_of;
ALTER TABLE ltp.tasks DROP COLUMN cancel_reason, DROP COLUMN retry_of;
`;

export class TaskReruns1764547200000 implements MigrationInterface {
  name = 'TaskReruns1764547200000';
  /** Runs outside TypeORM's transaction: see the comment at the top. */
  transaction = false;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(ADD_STATE);
    await inTransaction(queryRunner, UP);
  }

  /**
   * Postgres cannot drop a value from an enum type, so `cancelled` stays in ltp.task_status; rows in that
   * state must be deleted first (the down migration refuses while there are any).
   */
  async down(queryRunner: QueryRunner): Promise<void> {
    await inTransaction(
      queryRunner,
      `DO $$ BEGIN
         IF EXISTS (SELECT 1 FROM ltp.tasks WHERE status::text = 'cancelled') THEN
           RAISE EXCEPTION 'cancelled tasks exist: delete them before reverting TaskReruns1764547200000';
         END IF;
       END $$;
       ${DOWN}`,
    );
  }
}

async function inTransaction(queryRunner: QueryRunner, sql: string): Promise<void> {
  await queryRunner.startTransaction();
  try {
    await queryRunner.query(sql);
    await queryRunner.commitTransaction();
  } catch (error) {
    await queryRunner.rollbackTransaction();
    throw error;
  }
}

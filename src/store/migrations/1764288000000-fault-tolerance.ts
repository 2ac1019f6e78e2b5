// Faults (issue 7): due times for tasks (retry delays and producer delays), attempts counted when a
// handler starts rather than when a task is leased, and what the controller needs to judge waste and
// re-invoke a row exactly as it was dispatched.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
-- A task is due from run_after on: a producer may delay it, and a failed attempt comes back after the
-- pool's retry delay. Only due tasks are backlog and only due tasks are leased.
ALTER TABLE ltp.tasks ADD COLUMN run_after timestamptz NOT NULL DEFAULT now();
-- When the handler started on the current (or last) lease. attempts now counts these starts: a lease
-- given back before its handler started costs the task nothing.
ALTER TABLE ltp.tasks ADD COLUMN started_at timestamptz;
DROP INDEX ltp.tasks_created_by_queue;
CREATE INDEX tasks_due_by_queue ON ltp.tasks (queue, run_after, id) WHERE status = 'created';

-- The function as dispatched (re-invokes use the row, never a changed spec), how many tasks the
-- worker really started (0 on a finished row is waste), and the pool's retry delays at dispatch.
ALTER TABLE ltp.invocations
  ADD COLUMN function_region text,
  ADD COLUMN tasks_started integer NOT NULL DEFAULT 0 CHECK (tasks_started >= 0),
  ADD COLUMN retry_initial_delay_ms integer NOT NULL DEFAULT 10000 CHECK (retry_initial_delay_ms >= 0),
  ADD COLUMN retry_max_delay_ms integer NOT NULL DEFAULT 600000 CHECK (retry_max_delay_ms >= 0);
-- The latest invocations a worker finished, per pool: the waste streak reads a handful of them.
CREATE INDEX invocations_worker_finished ON ltp.invocations (pool_uid, finished_at DESC)
  WHERE status IN ('succeeded', 'failed') AND ready_at IS NOT NULL;

COMMENT ON COLUMN ltp.tasks.run_after IS 'The task is not leased before this time (producer delay or retry delay).';
COMMENT ON COLUMN ltp.tasks.attempts IS 'How many times a handler started on this task.';
COMMENT ON COLUMN ltp.invocations.tasks_started IS 'Tasks whose handler this invocation started; 0 on a finished row means waste.';
`;

const DOWN = `
DROP INDEX ltp.invocations_worker_finished;
ALTER TABLE ltp.invocations DROP COLUMN function_region, DROP COLUMN tasks_started,
  DROP COLUMN retry_initial_delay_ms, DROP COLUMN retry_max_delay_ms;
DROP INDEX ltp.tasks_due_by_queue;
CREATE INDEX tasks_created_by_queue ON ltp.tasks (queue, id) WHERE status = 'created';
ALTER TABLE ltp.tasks DROP COLUMN started_at, DROP COLUMN run_after;
`;

export class FaultTolerance1764288000000 implements MigrationInterface {
  name = 'FaultTolerance1764288000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

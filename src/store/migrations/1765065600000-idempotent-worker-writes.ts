// A worker's write can commit and its answer still be lost (the connection drops right after the commit);
// the SDK then retries it (packages/worker/src/task-worker.ts, persist). Before this migration each retry
// did the wrong thing: a retried lease saw the invocation running and returned nothing (the worker stopped,
// its tasks waited a heartbeat timeout, the invocation was wasted); a retried start counted a second
// attempt (a task could fail after fewer real starts than maxTaskAttempts); a retried completion or finish
// said the lease or the invocation had been taken away. Each of these functions now answers a retry as it
// answered the first call. The claim is not among them: Lambda's duplicate deliveries carry the same
// request id, so a claim keyed on it could let two workers run one invocation; a retried claim that had
// committed still sees the row claimed and leases nothing (the controller orphans it). Migration
// 1765152000000-claim-token answers that retry too, keyed on a token each run draws for itself.
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { WORKER_FUNCTION_DEFINITIONS } from './1764460800000-worker-functions.ts';

const UP = `
-- A lease retried after its answer was lost: the tasks this invocation already leased, as long as none has
-- started (only the worker that claimed the invocation leases for it: a duplicate delivery stops at the claim).
CREATE OR REPLACE FUNCTION ltp.worker_lease(p_invocation bigint)
RETURNS TABLE (id bigint, queue text, payload jsonb, attempts integer, max_attempts integer, created_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
DECLARE inv ltp.invocations;
DECLARE n integer;
BEGIN
  SELECT * INTO inv FROM ltp.invocations i WHERE i.id = p_invocation AND i.status IN ('ready', 'running') FOR UPDATE;
  IF NOT FOUND THEN RETURN; END IF;
  IF inv.status = 'running' THEN
    IF inv.tasks_started > 0 THEN RETURN; END IF;
    RETURN QUERY SELECT t.id, t.queue, t.payload, t.attempts, t.max_attempts, t.created_at FROM ltp.tasks t
                  WHERE t.invocation_id = inv.id AND t.status = 'leased' ORDER BY t.run_after, t.id;
    IF NOT FOUND THEN RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::jsonb, NULL::integer, NULL::integer, NULL::timestamptz; END IF;
    RETURN;
  END IF;
  RETURN QUERY
    WITH picked AS (
      SELECT t.id FROM ltp.tasks t
       WHERE t.queue = inv.queue AND t.status = 'created' AND t.run_after <= now()
       ORDER BY t.run_after, t.id LIMIT inv.tasks_per_invocation FOR UPDATE SKIP LOCKED)
    UPDATE ltp.tasks t SET status = 'leased', invocation_id = inv.id, leased_at = now(), finished_at = NULL
      FROM picked WHERE t.id = picked.id
    RETURNING t.id, t.queue, t.payload, t.attempts, t.max_attempts, t.created_at;
  GET DIAGNOSTICS n = ROW_COUNT;
  UPDATE ltp.invocations i SET status = 'running', running_at = now(), heartbeat_at = now(), tasks_leased = n WHERE i.id = inv.id;
  IF n = 0 THEN RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::jsonb, NULL::integer, NULL::integer, NULL::timestamptz; END IF;
END $$;

-- A start retried after its answer was lost: the attempt it already counted, not another one.
CREATE OR REPLACE FUNCTION ltp.worker_start_task(p_task bigint, p_invocation bigint)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
DECLARE a integer;
BEGIN
  UPDATE ltp.tasks t SET attempts = t.attempts + 1, started_at = clock_timestamp()
   WHERE t.id = p_task AND t.status = 'leased' AND t.invocation_id = p_invocation
     AND (t.started_at IS NULL OR t.started_at < t.leased_at)
     AND EXISTS (SELECT 1 FROM ltp.invocations i WHERE i.id = p_invocation AND i.status = 'running')
  RETURNING t.attempts INTO a;
  IF a IS NOT NULL THEN
    UPDATE ltp.invocations i SET tasks_started = i.tasks_started + 1, heartbeat_at = now()
     WHERE i.id = p_invocation AND i.status = 'running';
    RETURN a;
  END IF;
  SELECT t.attempts INTO a FROM ltp.tasks t
   WHERE t.id = p_task AND t.status = 'leased' AND t.invocation_id = p_invocation AND t.started_at >= t.leased_at
     AND EXISTS (SELECT 1 FROM ltp.invocations i WHERE i.id = p_invocation AND i.status = 'running');
  RETURN a;
END $$;

-- A completion retried after its answer was lost: true again once the task is done by this invocation.
CREATE OR REPLACE FUNCTION ltp.worker_complete_task(p_task bigint, p_invocation bigint, p_result jsonb)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
  WITH done AS (
    UPDATE ltp.tasks SET status = 'done', result = p_result, last_error = NULL, finished_at = now()
     WHERE id = p_task AND status = 'leased' AND invocation_id = p_invocation RETURNING 1)
  SELECT EXISTS (SELECT 1 FROM done)
      OR EXISTS (SELECT 1 FROM ltp.tasks WHERE id = p_task AND status = 'done' AND invocation_id = p_invocation)
$$;

-- A failed attempt retried after its answer was lost: the status it already left, when nothing changed since.
CREATE OR REPLACE FUNCTION ltp.worker_fail_task(p_task bigint, p_invocation bigint, p_error text, p_retry_delay_ms double precision)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
  WITH inv AS (SELECT max_task_attempts FROM ltp.invocations WHERE id = p_invocation),
  failed AS (
    UPDATE ltp.tasks t
       SET status = CASE WHEN t.attempts >= COALESCE(t.max_attempts, inv.max_task_attempts) THEN 'failed'::ltp.task_status ELSE 'created'::ltp.task_status END,
           last_error = left(p_error, 4000),
           run_after = CASE WHEN t.attempts >= COALESCE(t.max_attempts, inv.max_task_attempts) THEN t.run_after
                            ELSE now() + make_interval(secs => GREATEST(p_retry_delay_ms, 0) / 1000) END,
           finished_at = CASE WHEN t.attempts >= COALESCE(t.max_attempts, inv.max_task_attempts) THEN now() END
      FROM inv
     WHERE t.id = p_task AND t.status = 'leased' AND t.invocation_id = p_invocation
    RETURNING t.status)
  SELECT status::text FROM failed
  UNION ALL
  SELECT t.status::text FROM ltp.tasks t
   WHERE NOT EXISTS (SELECT 1 FROM failed)
     AND t.id = p_task AND t.invocation_id = p_invocation AND t.status IN ('created', 'failed') AND t.last_error = left(p_error, 4000)
$$;

-- A finish retried after its answer was lost: true again once the invocation ended as this worker said.
CREATE OR REPLACE FUNCTION ltp.worker_finish(p_invocation bigint, p_outcome text, p_code text, p_message text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
BEGIN
  IF p_outcome NOT IN ('succeeded', 'failed') THEN
    RAISE EXCEPTION 'a worker ends an invocation succeeded or failed, not %', p_outcome USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE ltp.invocations
     SET status = p_outcome::ltp.invocation_status, finished_at = now(), error_code = p_code, error_message = left(p_message, 2000)
   WHERE id = p_invocation
     AND status = ANY (CASE WHEN p_outcome = 'succeeded' THEN ARRAY['running']::ltp.invocation_status[]
                            ELSE ARRAY['ready', 'running']::ltp.invocation_status[] END);
  IF FOUND THEN RETURN true; END IF;
  RETURN EXISTS (SELECT 1 FROM ltp.invocations
                  WHERE id = p_invocation AND status = p_outcome::ltp.invocation_status AND error_code IS NOT DISTINCT FROM p_code
                    AND ready_at IS NOT NULL);
END $$;
`;

// The functions as 1764460800000-worker-functions.ts created them.
const REPLACED = ['worker_lease', 'worker_start_task', 'worker_complete_task', 'worker_fail_task', 'worker_finish'] as const;
const DOWN = REPLACED.map((name) => WORKER_FUNCTION_DEFINITIONS[name].replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION')).join('\n');

export class IdempotentWorkerWrites1765065600000 implements MigrationInterface {
  name = 'IdempotentWorkerWrites1765065600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

// Least privilege (issue 10): everything a worker does is one of these SECURITY DEFINER functions, each
// of which checks the invocation (and, for a task, that this invocation holds its lease) before it changes
// anything. A database role that may only EXECUTE them can claim an invocation it was sent, lease what that
// invocation may lease, and record the outcome of the tasks it holds: nothing else. The worker SDK always
// calls them, so one code path serves a shared role and a dedicated one. `lambda-task-pool migrate
// --create-roles` creates the producer, worker and controller roles (src/store/roles.ts).
import type { MigrationInterface, QueryRunner } from 'typeorm';

const FUNCTIONS = [
  'worker_dispatched_function(bigint)',
  'worker_claim(bigint, text)',
  'worker_lease(bigint)',
  'worker_start_task(bigint, bigint)',
  'worker_heartbeat(bigint)',
  'worker_complete_task(bigint, bigint, jsonb)',
  'worker_fail_task(bigint, bigint, text, double precision)',
  'worker_release_unstarted(bigint, bigint[], text)',
  'worker_finish(bigint, text, text, text)',
];

/**
 * Each worker function as this migration creates it, by name. A later migration that replaces one restores it
 * from here in its down() (1765065600000-idempotent-worker-writes.ts).
 */
export const WORKER_FUNCTION_DEFINITIONS = {
  worker_dispatched_function: `
-- The function an invocation was dispatched to (the SDK refuses a forged or misrouted event before claiming).
CREATE FUNCTION ltp.worker_dispatched_function(p_invocation bigint)
RETURNS TABLE (function_name text, function_qualifier text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
  SELECT function_name, function_qualifier FROM ltp.invocations WHERE id = p_invocation
$$;
`,
  worker_claim: `
-- created|pending -> ready; when no row changes, the delivery is counted and the row's state returned.
CREATE FUNCTION ltp.worker_claim(p_invocation bigint, p_request_id text)
RETURNS TABLE (claimed boolean, status text, queue text, pool_uid text, function_name text, function_qualifier text,
               tasks_per_invocation integer, max_task_attempts integer, heartbeat_timeout_seconds integer,
               retry_initial_delay_ms integer, retry_max_delay_ms integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
DECLARE r ltp.invocations;
BEGIN
  UPDATE ltp.invocations i
     SET status = 'ready', ready_at = now(), heartbeat_at = now(), deliveries = i.deliveries + 1,
         request_id = COALESCE(i.request_id, p_request_id)
   WHERE i.id = p_invocation AND i.status IN ('created', 'pending')
  RETURNING * INTO r;
  IF FOUND THEN
    RETURN QUERY SELECT true, r.status::text, r.queue, r.pool_uid, r.function_name, r.function_qualifier, r.tasks_per_invocation,
                        r.max_task_attempts, r.heartbeat_timeout_seconds, r.retry_initial_delay_ms, r.retry_max_delay_ms;
    RETURN;
  END IF;
  UPDATE ltp.invocations i SET deliveries = i.deliveries + 1 WHERE i.id = p_invocation RETURNING * INTO r;
  RETURN QUERY SELECT false, COALESCE(r.status::text, 'missing'), NULL::text, NULL::text, NULL::text, NULL::text,
                      NULL::integer, NULL::integer, NULL::integer, NULL::integer, NULL::integer;
END $$;
`,
  worker_lease: `
-- Leases up to tasks_per_invocation due tasks of the invocation's own queue (FOR UPDATE SKIP LOCKED) and moves it
-- ready -> running, atomically. Returns no row at all when the invocation is no longer ready (nothing is leased),
-- and a single row with a NULL id when it leased nothing.
CREATE FUNCTION ltp.worker_lease(p_invocation bigint)
RETURNS TABLE (id bigint, queue text, payload jsonb, attempts integer, max_attempts integer, created_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
DECLARE inv ltp.invocations;
DECLARE n integer;
BEGIN
  SELECT * INTO inv FROM ltp.invocations i WHERE i.id = p_invocation AND i.status = 'ready' FOR UPDATE;
  IF NOT FOUND THEN RETURN; END IF;
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
`,
  worker_start_task: `
-- The handler is about to start on a task this running invocation holds: count the attempt, renew the heartbeat.
CREATE FUNCTION ltp.worker_start_task(p_task bigint, p_invocation bigint)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
DECLARE a integer;
BEGIN
  UPDATE ltp.tasks t SET attempts = t.attempts + 1, started_at = clock_timestamp()
   WHERE t.id = p_task AND t.status = 'leased' AND t.invocation_id = p_invocation
     AND EXISTS (SELECT 1 FROM ltp.invocations i WHERE i.id = p_invocation AND i.status = 'running')
  RETURNING t.attempts INTO a;
  IF a IS NOT NULL THEN
    UPDATE ltp.invocations i SET tasks_started = i.tasks_started + 1, heartbeat_at = now()
     WHERE i.id = p_invocation AND i.status = 'running';
  END IF;
  RETURN a;
END $$;
`,
  worker_heartbeat: `
CREATE FUNCTION ltp.worker_heartbeat(p_invocation bigint)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
  WITH beat AS (
    UPDATE ltp.invocations SET heartbeat_at = now() WHERE id = p_invocation AND status IN ('ready', 'running') RETURNING 1)
  SELECT EXISTS (SELECT 1 FROM beat)
$$;
`,
  worker_complete_task: `
CREATE FUNCTION ltp.worker_complete_task(p_task bigint, p_invocation bigint, p_result jsonb)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
  WITH done AS (
    UPDATE ltp.tasks SET status = 'done', result = p_result, last_error = NULL, finished_at = now()
     WHERE id = p_task AND status = 'leased' AND invocation_id = p_invocation RETURNING 1)
  SELECT EXISTS (SELECT 1 FROM done)
$$;
`,
  worker_fail_task: `
-- A failed attempt: due again after the delay, or failed once its attempts (the task's, else the invocation's
-- limit) are used up. Returns the new status, or NULL when the lease is no longer this invocation's.
CREATE FUNCTION ltp.worker_fail_task(p_task bigint, p_invocation bigint, p_error text, p_retry_delay_ms double precision)
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
$$;
`,
  worker_release_unstarted: `
CREATE FUNCTION ltp.worker_release_unstarted(p_invocation bigint, p_tasks bigint[], p_reason text)
RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
  WITH released AS (
    UPDATE ltp.tasks SET status = 'created', last_error = left(p_reason, 4000)
     WHERE id = ANY(p_tasks) AND status = 'leased' AND invocation_id = p_invocation RETURNING 1)
  SELECT count(*)::integer FROM released
$$;
`,
  worker_finish: `
-- Ends the invocation as its worker sees it: succeeded (from running) or failed (from ready or running).
CREATE FUNCTION ltp.worker_finish(p_invocation bigint, p_outcome text, p_code text, p_message text)
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
  RETURN FOUND;
END $$;
`,
} satisfies Record<string, string>;

const UP = `
${Object.values(WORKER_FUNCTION_DEFINITIONS).join('\n')}
${FUNCTIONS.map((f) => `REVOKE ALL ON FUNCTION ltp.${f} FROM PUBLIC;`).join('\n')}
`;

const DOWN = FUNCTIONS.map((f) => `DROP FUNCTION ltp.${f};`).join('\n');

export const WORKER_FUNCTIONS = FUNCTIONS;

export class WorkerFunctions1764460800000 implements MigrationInterface {
  name = 'WorkerFunctions1764460800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

// The public schema contract (docs/schema.md): tasks, invocations and queue claims in their own
// Postgres schema `ltp`. The database itself enforces the lifecycles of docs/architecture.md §4 and §6: enums for
// the states and a trigger that refuses any transition the state machines do not allow, so no client,
// ours or a producer's, can move a row out of a terminal state.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
-- Only where there is none: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
-- exists, and a schema owner a DBA made (CREATE SCHEMA ltp AUTHORIZATION owner) may not have it.
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'ltp') THEN CREATE SCHEMA ltp; END IF;
END $$;

CREATE TYPE ltp.task_status AS ENUM ('created', 'leased', 'done', 'failed');
CREATE TYPE ltp.invocation_status AS ENUM
  ('created', 'pending', 'ready', 'running', 'succeeded', 'failed', 'orphaned', 'terminated');

CREATE TABLE ltp.invocations (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pool_namespace        text NOT NULL,
  pool_name             text NOT NULL,
  pool_uid              text NOT NULL,
  queue                 text NOT NULL,
  status                ltp.invocation_status NOT NULL DEFAULT 'created',
  function_name         text NOT NULL,
  function_qualifier    text,
  tasks_per_invocation  integer NOT NULL CHECK (tasks_per_invocation >= 1),
  max_task_attempts     integer NOT NULL CHECK (max_task_attempts >= 1),
  heartbeat_timeout_seconds integer NOT NULL CHECK (heartbeat_timeout_seconds >= 1),
  request_id            text,
  invoke_attempts       integer NOT NULL DEFAULT 0 CHECK (invoke_attempts >= 0),
  deliveries            integer NOT NULL DEFAULT 0 CHECK (deliveries >= 0),
  tasks_leased          integer NOT NULL DEFAULT 0 CHECK (tasks_leased >= 0),
  created_at            timestamptz NOT NULL DEFAULT now(),
  invoke_after          timestamptz NOT NULL DEFAULT now(),
  invoked_at            timestamptz,
  ready_at              timestamptz,
  running_at            timestamptz,
  heartbeat_at          timestamptz,
  finished_at           timestamptz,
  updated_at            timestamptz NOT NULL DEFAULT now(),
  error_code            text,
  error_message         text
);

CREATE TABLE ltp.tasks (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue          text NOT NULL CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$'),
  payload        jsonb NOT NULL DEFAULT '{}'::jsonb,
  status         ltp.task_status NOT NULL DEFAULT 'created',
  attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts   integer CHECK (max_attempts >= 1),
  invocation_id  bigint REFERENCES ltp.invocations (id),
  created_at     timestamptz NOT NULL DEFAULT now(),
  leased_at      timestamptz,
  finished_at    timestamptz,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  result         jsonb,
  last_error     text,
  CONSTRAINT leased_task_has_invocation CHECK (status <> 'leased' OR invocation_id IS NOT NULL)
);

CREATE TABLE ltp.queue_claims (
  queue           text PRIMARY KEY,
  pool_namespace  text NOT NULL,
  pool_name       text NOT NULL,
  pool_uid        text NOT NULL,
  claimed_at      timestamptz NOT NULL DEFAULT now()
);

-- Hot paths: leasing and the bounded backlog count walk this partial index in id order.
CREATE INDEX tasks_created_by_queue ON ltp.tasks (queue, id) WHERE status = 'created';
-- Counts by state for status, and the release of an invocation's leases.
CREATE INDEX tasks_queue_status ON ltp.tasks (queue, status);
CREATE INDEX tasks_leased_by_invocation ON ltp.tasks (invocation_id) WHERE status = 'leased';
-- Live invocations: counts for the planner and the sweeps.
CREATE INDEX invocations_live_by_pool ON ltp.invocations (pool_uid, status, created_at)
  WHERE status IN ('created', 'pending', 'ready', 'running');
CREATE INDEX invocations_pool_status ON ltp.invocations (pool_uid, status);
-- The wasted-invocations count and the task wait metric, without walking history.
CREATE INDEX invocations_wasted ON ltp.invocations (pool_uid) WHERE status = 'succeeded' AND tasks_leased = 0;
CREATE INDEX tasks_leased_at ON ltp.tasks (queue, leased_at) WHERE leased_at IS NOT NULL;

-- The state machines, enforced for every client.
CREATE FUNCTION ltp.invocation_transition_allowed(from_status ltp.invocation_status, to_status ltp.invocation_status)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT from_status = to_status OR CASE from_status
    WHEN 'created' THEN to_status IN ('pending', 'ready', 'failed', 'orphaned', 'terminated')
    WHEN 'pending' THEN to_status IN ('ready', 'orphaned', 'terminated')
    WHEN 'ready'   THEN to_status IN ('running', 'failed', 'orphaned', 'terminated')
    WHEN 'running' THEN to_status IN ('succeeded', 'failed', 'orphaned', 'terminated')
    ELSE false
  END
$$;

CREATE FUNCTION ltp.task_transition_allowed(from_status ltp.task_status, to_status ltp.task_status)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT from_status = to_status OR CASE from_status
    WHEN 'created' THEN to_status IN ('leased')
    WHEN 'leased'  THEN to_status IN ('done', 'failed', 'created')
    ELSE false
  END
$$;

CREATE FUNCTION ltp.guard_invocation_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IN ('succeeded', 'failed', 'orphaned', 'terminated') AND NEW.status <> OLD.status THEN
    RAISE EXCEPTION 'invocation % is % and terminal: it cannot change', OLD.id, OLD.status
      USING ERRCODE = 'check_violation';
  END IF;
  IF NOT ltp.invocation_transition_allowed(OLD.status, NEW.status) THEN
    RAISE EXCEPTION 'invocation % cannot move from % to %', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE FUNCTION ltp.guard_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT ltp.task_transition_allowed(OLD.status, NEW.status) THEN
    RAISE EXCEPTION 'task % cannot move from % to %', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TRIGGER invocation_transition BEFORE UPDATE ON ltp.invocations
  FOR EACH ROW EXECUTE FUNCTION ltp.guard_invocation_transition();
CREATE TRIGGER task_transition BEFORE UPDATE ON ltp.tasks
  FOR EACH ROW EXECUTE FUNCTION ltp.guard_task_transition();

-- Wake-ups: the controller LISTENs and reconciles the right pool within a second.
-- Channel ltp_tasks carries a queue name when tasks become available (inserted, or sent back to created).
-- Channel ltp_invocations carries a pool uid when one of its invocations changes state.
CREATE FUNCTION ltp.notify_tasks_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_tasks', q.queue) FROM (SELECT DISTINCT queue FROM inserted) q;
  RETURN NULL;
END $$;

CREATE FUNCTION ltp.notify_tasks_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_tasks', q.queue)
    FROM (SELECT DISTINCT n.queue FROM updated n JOIN previous o ON o.id = n.id
          WHERE n.status = 'created' AND o.status <> 'created') q;
  RETURN NULL;
END $$;

CREATE FUNCTION ltp.notify_invocations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ltp_invocations', p.pool_uid)
    FROM (SELECT DISTINCT n.pool_uid FROM updated n JOIN previous o ON o.id = n.id
          WHERE n.status <> o.status) p;
  RETURN NULL;
END $$;

CREATE TRIGGER tasks_inserted AFTER INSERT ON ltp.tasks
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION ltp.notify_tasks_inserted();
CREATE TRIGGER tasks_released AFTER UPDATE ON ltp.tasks
  REFERENCING NEW TABLE AS updated OLD TABLE AS previous
  FOR EACH STATEMENT EXECUTE FUNCTION ltp.notify_tasks_released();
CREATE TRIGGER invocations_changed AFTER UPDATE ON ltp.invocations
  REFERENCING NEW TABLE AS updated OLD TABLE AS previous
  FOR EACH STATEMENT EXECUTE FUNCTION ltp.notify_invocations_changed();

COMMENT ON SCHEMA ltp IS 'LambdaTaskPool: tasks, the Lambda invocations that work them, and queue claims. See docs/schema.md.';
COMMENT ON TABLE ltp.tasks IS 'Work items. Producers INSERT (queue, payload[, max_attempts]); everything else belongs to LambdaTaskPool.';
COMMENT ON TABLE ltp.invocations IS 'One row per asynchronous Lambda invocation, inserted before the Invoke call. Its id travels in the event.';
COMMENT ON TABLE ltp.queue_claims IS 'Which pool serves each queue of this database: at most one.';
`;

const DOWN = `DROP SCHEMA ltp CASCADE;`;

export class InitialSchema1764201600000 implements MigrationInterface {
  name = 'InitialSchema1764201600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

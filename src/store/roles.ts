// Database roles for least privilege (issue 10): three group roles (NOLOGIN) that a DBA grants to login
// roles, created by `lambda-task-pool migrate --create-roles` or printed for a DBA with
// `--print-roles-sql`. Their grants are applied again by every migrate while the roles exist, so tables a
// later migration adds are covered.
//
//   producer    inserts tasks and reads them; nothing else (it cannot touch invocations, claims or totals);
//   worker      executes the ltp.worker_* SECURITY DEFINER functions and nothing else: each checks the
//               invocation and, for a task, that this invocation holds its lease;
//   controller  reads and writes the ledger (dispatch, sweeps, retention, trace), listens for changes.
// The migrations themselves run as the schema owner, not as any of these.
import type { Queryable } from './db.ts';
import { WORKER_FUNCTIONS } from './migrations/1764460800000-worker-functions.ts';
import { CLAIM_TOKEN_FUNCTIONS } from './migrations/1765152000000-claim-token.ts';

export interface RoleNames {
  producer: string;
  worker: string;
  controller: string;
}

export const DEFAULT_ROLE_PREFIX = 'ltp';
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,50}$/;

export function roleNames(prefix = DEFAULT_ROLE_PREFIX): RoleNames {
  if (!ROLE_NAME.test(prefix))
    throw new Error(`role prefix "${prefix}" must be lower-case letters, digits and _ (at most 51), starting with a letter or _`);
  return { producer: `${prefix}_producer`, worker: `${prefix}_worker`, controller: `${prefix}_controller` };
}

/** CREATE ROLE for each, idempotent (a role that exists is left as it is). */
export function createRolesSql(names: RoleNames): string[] {
  return Object.values(names).map(
    (role) => `DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} NOLOGIN; END IF;
END $$;`,
  );
}

/** The grants: what each role may do, and no more. Idempotent. */
export function grantsSql(names: RoleNames): string[] {
  const { producer, worker, controller } = names;
  return [
    // Nothing for anyone by default: the schema's objects are reachable only through these grants.
    `REVOKE ALL ON SCHEMA ltp FROM PUBLIC`,
    `GRANT USAGE ON SCHEMA ltp TO ${producer}, ${worker}, ${controller}`,
    // producer
    `GRANT SELECT, INSERT ON ltp.tasks TO ${producer}`,
    // worker: the protocol functions only
    ...[...WORKER_FUNCTIONS, ...CLAIM_TOKEN_FUNCTIONS].map((f) => `GRANT EXECUTE ON FUNCTION ltp.${f} TO ${worker}`),
    // controller
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ltp TO ${controller}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ltp TO ${controller}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ltp TO ${controller}`,
  ];
}

/** The whole script, for a DBA to read and run. */
export function rolesScript(names: RoleNames): string {
  return (
    `-- LambdaTaskPool database roles: run as the owner of schema ltp (the user that ran migrate).\n` +
    `-- Then give them to login roles, for example: GRANT ${names.worker} TO my_lambda_login;\n` +
    [...createRolesSql(names), ...grantsSql(names).map((s) => `${s};`)].join('\n') +
    '\n'
  );
}

export async function createRoles(db: Queryable, names: RoleNames): Promise<void> {
  for (const statement of [...createRolesSql(names), ...grantsSql(names)]) await db.query(statement);
}

/** After a migration: grants again, for the roles that exist (tables a migration added get theirs). */
export async function refreshGrants(db: Queryable, names: RoleNames = roleNames()): Promise<boolean> {
  const existing = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ANY($1::text[])`, [
    Object.values(names),
  ]);
  if (existing.rows[0]?.n !== 3) return false;
  for (const statement of grantsSql(names)) await db.query(statement);
  return true;
}

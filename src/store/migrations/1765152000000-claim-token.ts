// A claim can commit and its answer be lost (the connection drops right after the commit); the worker SDK
// retries it. Before this migration the retry saw the row already `ready`, took it for a duplicate delivery
// and left: the invocation was wasted and its row waited a heartbeat timeout to be orphaned. The retry
// could not be told from a duplicate, because Lambda's duplicate deliveries carry the same request id.
//
// Now each run of the worker's handler draws a random claim token and sends it with every attempt of its
// claim. The claim stores it on the row; an attempt that finds the row `ready` with its own token is the
// same run asking again, and is answered as the first attempt was (and renews the heartbeat, since the SDK
// dates its lease from the attempt that was answered). A duplicate delivery draws a token of its own and
// still stops at the claim. The two-argument claim stays for workers on an older SDK.
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The functions this migration adds, for the worker role's grants (src/store/roles.ts). */
export const CLAIM_TOKEN_FUNCTIONS = ['worker_claim(bigint, text, uuid)'];

const UP = `
ALTER TABLE ltp.invocations ADD COLUMN claim_token uuid;

-- created|pending -> ready, keeping the claimant's token; the same token finding the row ready is the same run
-- retrying a claim whose answer was lost. Otherwise the delivery is counted and the row's state returned.
CREATE FUNCTION ltp.worker_claim(p_invocation bigint, p_request_id text, p_claim_token uuid)
RETURNS TABLE (claimed boolean, status text, queue text, pool_uid text, function_name text, function_qualifier text,
               tasks_per_invocation integer, max_task_attempts integer, heartbeat_timeout_seconds integer,
               retry_initial_delay_ms integer, retry_max_delay_ms integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ltp, pg_temp AS $$
DECLARE r ltp.invocations;
BEGIN
  UPDATE ltp.invocations i
     SET status = 'ready', ready_at = now(), heartbeat_at = now(), deliveries = i.deliveries + 1,
         request_id = COALESCE(i.request_id, p_request_id), claim_token = p_claim_token
   WHERE i.id = p_invocation AND i.status IN ('created', 'pending')
  RETURNING * INTO r;
  IF NOT FOUND AND p_claim_token IS NOT NULL THEN
    UPDATE ltp.invocations i SET heartbeat_at = now()
     WHERE i.id = p_invocation AND i.status = 'ready' AND i.claim_token = p_claim_token
    RETURNING * INTO r;
  END IF;
  IF FOUND THEN
    RETURN QUERY SELECT true, r.status::text, r.queue, r.pool_uid, r.function_name, r.function_qualifier, r.tasks_per_invocation,
                        r.max_task_attempts, r.heartbeat_timeout_seconds, r.retry_initial_delay_ms, r.retry_max_delay_ms;
    RETURN;
  END IF;
  UPDATE ltp.invocations i SET deliveries = i.deliveries + 1 WHERE i.id = p_invocation RETURNING * INTO r;
  RETURN QUERY SELECT false, COALESCE(r.status::text, 'missing'), NULL::text, NULL::text, NULL::text, NULL::text,
                      NULL::integer, NULL::integer, NULL::integer, NULL::integer, NULL::integer;
END $$;

${CLAIM_TOKEN_FUNCTIONS.map((f) => `REVOKE ALL ON FUNCTION ltp.${f} FROM PUBLIC;`).join('\n')}
`;

const DOWN = `
${CLAIM_TOKEN_FUNCTIONS.map((f) => `DROP FUNCTION ltp.${f};`).join('\n')}
ALTER TABLE ltp.invocations DROP COLUMN claim_token;
`;

export class ClaimToken1765152000000 implements MigrationInterface {
  name = 'ClaimToken1765152000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

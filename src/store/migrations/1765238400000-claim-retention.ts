// A queue's retention travels with its claim. Until this migration each controller's retention sweep knew
// only the pools it serves itself: a second controller on the same database (another Helm release watching
// other namespaces, another cluster) applied its own default to the queues and pools of the first, and
// deleted finished tasks a pool had asked to keep for longer (or for ever). Now the controller that holds a
// queue's claim writes the retention it keeps that queue's tasks and its pool's invocations for
// (`retention_seconds`: the pool's own, or that controller's default; 0 is for ever), and refreshes the
// row (`refreshed_at`) each time it checks the claim. Every sweep honours a fresh claim's retention; a
// claim not refreshed for a day counts as stale (its controller gone, stopped, or unable to reach the pool's
// database that long) and takes the sweeping controller's default, as a claim without a recorded retention
// (written by an older controller, or withdrawn because the tenancy policy now refuses its pool) does.
// bigint: --retention has no upper bound of its own.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
ALTER TABLE ltp.queue_claims
  ADD COLUMN retention_seconds bigint CHECK (retention_seconds >= 0),
  ADD COLUMN refreshed_at timestamptz NOT NULL DEFAULT now();
COMMENT ON COLUMN ltp.queue_claims.retention_seconds IS
  'How long the holding pool keeps finished tasks of the queue and its own finished invocations (seconds; 0: for ever; NULL: not recorded).';
COMMENT ON COLUMN ltp.queue_claims.refreshed_at IS 'When the holding pool''s controller last confirmed the claim.';
`;

const DOWN = `
ALTER TABLE ltp.queue_claims DROP COLUMN retention_seconds, DROP COLUMN refreshed_at;
`;

export class ClaimRetention1765238400000 implements MigrationInterface {
  name = 'ClaimRetention1765238400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

// The decision trace (issue 11): every dispatch pass that changes something records what it saw, what it
// did and why; the invocations it started point at it. Retention deletes decisions by age like the rest
// of a pool's history (no foreign key: an invocation may outlive its decision, or the other way round).
import type { MigrationInterface, QueryRunner } from 'typeorm';

const UP = `
CREATE TABLE ltp.decisions (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pool_uid        text NOT NULL,
  pool_namespace  text NOT NULL,
  pool_name       text NOT NULL,
  decided_at      timestamptz NOT NULL DEFAULT now(),
  inputs          jsonb NOT NULL,
  outcome         jsonb NOT NULL,
  reason          text NOT NULL
);
CREATE INDEX decisions_by_pool ON ltp.decisions (pool_uid, decided_at);
ALTER TABLE ltp.invocations ADD COLUMN decision_id bigint;
CREATE INDEX invocations_by_decision ON ltp.invocations (decision_id) WHERE decision_id IS NOT NULL;
`;

const DOWN = `
DROP INDEX ltp.invocations_by_decision;
ALTER TABLE ltp.invocations DROP COLUMN decision_id;
DROP TABLE ltp.decisions;
`;

export class DecisionTrace1764633600000 implements MigrationInterface {
  name = 'DecisionTrace1764633600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(UP);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(DOWN);
  }
}

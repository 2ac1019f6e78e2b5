// Forged worker events: anyone who may invoke a worker function can send it any event. Lambda itself refuses
// a body that is not JSON or is over its 1 MB async limit; the worker refuses a malformed event before it
// touches the database (WorkerEventError), refuses an invocation id of another function before the claim
// (WrongFunction), and skips an id whose row is missing or past its start. No row and no task changes, and
// the victim's tasks still run exactly once. See docs/security.md (EVENT-*).
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { expect } from 'chai';
import type { EventRecord } from '../../dev/src/lambda-runtime/index.ts';
import { enqueueTasks } from '../../src/store/task-store.ts';
import { applyPool, eventually } from '../support/system.ts';
import { removePools, HealthyProbe, NS, securityStack, type SecurityStack } from './stack.ts';

const TARGET = 'sec-forge-target';

describe('security: forged worker events (through the Lambda API, to the real worker)', function () {
  this.timeout(120_000);
  let stack: SecurityStack;
  let probe: HealthyProbe;
  let lambda: LambdaClient;

  before(async function () {
    this.timeout(240_000);
    stack = await securityStack();
    probe = new HealthyProbe(stack).start();
    lambda = new LambdaClient({
      region: 'us-east-1',
      endpoint: stack.lambda.endpoint,
      credentials: { accessKeyId: 'forger', secretAccessKey: 'forger' },
      maxAttempts: 1,
    });
  });

  after(async function () {
    this.timeout(60_000);
    lambda?.destroy();
    await removePools(NS.b, ['victim']);
  });

  /** Sends an Event invoke; returns the request id, or the error name Lambda answered with. */
  async function forge(payload: Buffer | string, functionName = TARGET): Promise<{ requestId?: string; error?: string }> {
    try {
      const out = await lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'Event',
          Payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
        }),
      );
      return { requestId: out.$metadata.requestId };
    } catch (error) {
      return { error: error instanceof Error ? error.name : String(error) };
    }
  }

  /** The runtime's record of the event once its delivery ended. */
  async function delivered(requestId: string, functionName = TARGET): Promise<EventRecord> {
    return eventually(`the delivery of ${requestId} to end`, async () => {
      const record = stack.lambda.events(functionName).find((e) => e.requestId === requestId);
      return record && record.deliveries.length > 0 && record.deliveries.every((d) => d.endedAt !== undefined) ? record : undefined;
    });
  }

  function logsOf(requestId: string, functionName = TARGET): string {
    return stack.lambda
      .logs(functionName)
      .filter((l) => l.requestId === requestId)
      .map((l) => l.line)
      .join('\n');
  }

  /**
   * The function's output for one request, once it has a line with `text`: the runtime reads a function's
   * output and its result on separate pipes, so the last lines may be read a moment after the delivery ended.
   */
  async function loggedFor(requestId: string, text: string, functionName = TARGET): Promise<string> {
    return eventually(
      `the output of ${functionName} for ${requestId} to say ${JSON.stringify(text)}`,
      async () => {
        const logs = logsOf(requestId, functionName);
        return logs.includes(text) ? logs : undefined;
      },
      10_000,
    );
  }

  async function rowDigest(): Promise<string> {
    const r = await stack.database.db.query<{ digest: string | null }>(
      `SELECT md5(string_agg(concat_ws('/', id, status, deliveries, tasks_leased, request_id), ',' ORDER BY id)) AS digest
         FROM ltp.invocations WHERE queue <> 'healthy'`,
    );
    return r.rows[0]?.digest ?? '';
  }

  it('[EVENT-01] a body that is not JSON: Lambda refuses the invoke (InvalidRequestContentException) and runs nothing', async () => {
    const before = stack.lambda.events(TARGET).length;
    expect(await forge('{"invocationId": 1')).to.deep.equal({ error: 'InvalidRequestContentException' });
    expect(stack.lambda.events(TARGET).length).to.equal(before);
  });

  it('[EVENT-02] a body over the 1 MB async limit: Lambda refuses the invoke (RequestTooLargeException) and runs nothing', async () => {
    const before = stack.lambda.events(TARGET).length;
    const body = Buffer.from(JSON.stringify({ invocationId: '1', pad: 'x'.repeat(1024 * 1024) }));
    expect(await forge(body)).to.deep.equal({ error: 'RequestTooLargeException' });
    expect(stack.lambda.events(TARGET).length).to.equal(before);
  });

  const malformed: Array<[string, string]> = [
    ['EVENT-03', '{}'],
    ['EVENT-04', '{"invocationId": "1 OR 1=1"}'],
    ['EVENT-05', '{"invocationId": "-1"}'],
    ['EVENT-06', '{"invocationId": "0x10"}'],
    ['EVENT-07', '{"invocationId": 1.5}'],
    ['EVENT-08', '{"invocationId": "99999999999999999999"}'],
    ['EVENT-09', '{"invocationId": "١٢٣"}'],
    ['EVENT-10', '[{"invocationId": "1"}]'],
    ['EVENT-11', '"1"'],
    ['EVENT-12', 'null'],
  ];
  for (const [id, body] of malformed) {
    it(`[${id}] a malformed event ${body}: the worker refuses it with WorkerEventError before touching the database`, async () => {
      const digest = await rowDigest();
      const { requestId, error } = await forge(body);
      expect(error).to.equal(undefined);
      const record = await delivered(requestId ?? '');
      expect(record.deliveries.map((d) => [d.outcome, d.errorType])).to.deep.equal([['error', 'WorkerEventError']]);
      expect(await rowDigest(), 'no invocation row changed').to.equal(digest);
    });
  }

  it('[EVENT-13] an invocation id with no row: the delivery is skipped as missing and changes nothing', async () => {
    const digest = await rowDigest();
    const { requestId } = await forge('{"invocationId": "987654321"}');
    const record = await delivered(requestId ?? '');
    expect(record.deliveries.map((d) => d.outcome)).to.deep.equal(['success']);
    await loggedFor(requestId ?? '', 'delivery skipped: invocation already past its start');
    expect(await rowDigest()).to.equal(digest);
  });

  it("[EVENT-14] another pool's pending invocation id, sent to another function (also padded to just under 1 MB): refused before the claim; the victim's tasks still run exactly once", async () => {
    await applyPool({
      namespace: NS.b,
      name: 'victim',
      functionName: 'team-b-slow',
      queue: 'team-b/victim',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
    });
    const tasks = await enqueueTasks(stack.database.db, { queue: 'team-b/victim', payloads: [{}, {}] });
    const pending = await eventually('the victim pool to have two pending invocations', async () => {
      const r = await stack.database.db.query<{ id: number }>(
        `SELECT id FROM ltp.invocations WHERE pool_namespace = $1 AND pool_name = 'victim' AND status = 'pending' ORDER BY id`,
        [NS.b],
      );
      return r.rows.length === 2 ? r.rows.map((row) => row.id) : undefined;
    });
    const [first = 0, second = 0] = pending;
    const plain = await forge(JSON.stringify({ invocationId: String(first) }));
    const padded = await forge(JSON.stringify({ invocationId: String(second), pad: 'x'.repeat(1000 * 1000) }));
    for (const forged of [plain, padded]) {
      const record = await delivered(forged.requestId ?? '');
      expect(record.deliveries.map((d) => d.outcome)).to.deep.equal(['success']);
      await loggedFor(forged.requestId ?? '', 'delivery refused: the invocation belongs to another function');
    }
    expect(stack.lambda.events(TARGET).find((e) => e.requestId === padded.requestId)?.payloadBytes).to.be.above(1_000_000);
    const rows = await stack.database.db.query<{ status: string; deliveries: number }>(
      `SELECT status, deliveries FROM ltp.invocations WHERE id = ANY($1) ORDER BY id`,
      [pending],
    );
    expect(rows.rows, 'the forged deliveries claimed nothing').to.deep.equal([
      { status: 'pending', deliveries: 0 },
      { status: 'pending', deliveries: 0 },
    ]);
    await eventually(
      'the real deliveries to run the victim tasks',
      async () => {
        const r = await stack.database.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ltp.tasks WHERE id = ANY($1) AND status = 'done'`,
          [tasks],
        );
        return r.rows[0]?.n === 2;
      },
      60_000,
    );
    const runs = await stack.database.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.executions WHERE task_id = ANY($1)`, [
      tasks,
    ]);
    expect(runs.rows[0]?.n).to.equal(2);
    const ended = await stack.database.db.query<{ status: string; deliveries: number }>(
      `SELECT status, deliveries FROM ltp.invocations WHERE id = ANY($1) ORDER BY id`,
      [pending],
    );
    expect(ended.rows).to.deep.equal([
      { status: 'succeeded', deliveries: 1 },
      { status: 'succeeded', deliveries: 1 },
    ]);
  });

  it('[EVENT-15] a finished invocation id replayed to its own function: skipped, counted as a delivery, no task runs again', async () => {
    const r = await stack.database.db.query<{ id: number; deliveries: number }>(
      `SELECT id, deliveries FROM ltp.invocations WHERE queue = 'healthy' AND status = 'succeeded' AND tasks_leased > 0 ORDER BY id LIMIT 1`,
    );
    const row = r.rows[0];
    if (!row) throw new Error('the healthy pool has no finished invocation yet');
    const executions = async () =>
      (await stack.database.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.executions WHERE invocation_id = $1`, [row.id]))
        .rows[0]?.n;
    const ran = await executions();
    const { requestId } = await forge(JSON.stringify({ invocationId: String(row.id) }), 'sec-healthy');
    await delivered(requestId ?? '', 'sec-healthy');
    await loggedFor(requestId ?? '', 'delivery skipped: invocation already past its start', 'sec-healthy');
    const after = await stack.database.db.query<{ status: string; deliveries: number }>(
      `SELECT status, deliveries FROM ltp.invocations WHERE id = $1`,
      [row.id],
    );
    expect(after.rows[0]).to.deep.equal({ status: 'succeeded', deliveries: row.deliveries + 1 });
    expect(await executions()).to.equal(ran);
  });

  it('the healthy pool kept dispatching and finishing its tasks, each exactly once, while this group ran', async () => {
    await probe.check();
  });
});

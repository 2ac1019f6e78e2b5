// The invoker's calls of every batch share one bounded parallelism: at most `parallelism` Invoke requests are
// open at once, the batches waiting are served one call of each in turn, each batch is answered sorted by id, and a throttle
// stops the rest of its own batch only. Against a real HTTP server, through the real AWS SDK.
import http from 'node:http';
import { expect } from 'chai';
import { createInvoker, type InvokeResult } from '../../src/lambda/invoker.ts';

const CREDENTIALS = { accessKeyId: 'x', secretAccessKey: 'x' };

/** What a call came to, as a user reading the row would: accepted, or the failure and whether it was sent. */
const outcome = (r: InvokeResult) => (r.accepted ? `${r.id} accepted` : `${r.id} ${r.failure.kind} sent=${r.sent}`);

describe('invoke parallelism shared by batches (real HTTP server, real AWS SDK)', function () {
  this.timeout(30_000);
  let server: http.Server;
  let endpoint: string;
  /** Requests as they arrived: the function name and the invocation id the payload carries. */
  let arrivals: string[];
  let open: number;
  let peakOpen: number;
  /** Functions whose every call is throttled. */
  let throttled: Set<string>;

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const fn = /\/functions\/([^/]+)\/invocations/.exec(req.url ?? '')?.[1] ?? '?';
        const id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { invocationId: string }).invocationId;
        arrivals.push(`${fn}:${id}`);
        open += 1;
        peakOpen = Math.max(peakOpen, open);
        setTimeout(() => {
          open -= 1;
          if (throttled.has(fn)) {
            res.writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'TooManyRequestsException' });
            res.end(JSON.stringify({ message: 'Rate exceeded', Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' }));
            return;
          }
          res.writeHead(202, { 'x-amzn-requestid': `req-${fn}-${id}` });
          res.end();
        }, 20);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the test server has no TCP address');
    endpoint = `http://127.0.0.1:${address.port}`;
  });

  beforeEach(() => {
    arrivals = [];
    open = 0;
    peakOpen = 0;
    throttled = new Set();
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('keeps at most `parallelism` calls open across two batches, serves them in turn, and falls idle', async () => {
    const invoker = createInvoker({ defaultRegion: 'us-east-1', endpoint, credentials: CREDENTIALS, parallelism: 3 });
    try {
      const first = invoker.invokeBatch({ name: 'fn-a' }, [5, 3, 1, 4, 2]);
      const second = invoker.invokeBatch({ name: 'fn-b' }, [14, 11, 13, 12]);
      expect(invoker.inFlight(), 'calls in flight or waiting right after both batches were handed over').to.equal(9);
      let idle = false;
      const fellIdle = invoker.idle().then(() => (idle = true));
      const [a, b] = await Promise.all([first, second]);
      await fellIdle;
      expect(idle, 'idle() resolved').to.equal(true);
      expect(invoker.inFlight(), 'calls in flight or waiting afterwards').to.equal(0);
      expect(a.map(outcome), 'the first batch, sorted by id').to.deep.equal([
        '1 accepted',
        '2 accepted',
        '3 accepted',
        '4 accepted',
        '5 accepted',
      ]);
      expect(b.map(outcome), 'the second batch, sorted by id').to.deep.equal(['11 accepted', '12 accepted', '13 accepted', '14 accepted']);
      expect(a.map((r) => (r.accepted ? r.requestId : undefined))).to.deep.equal([1, 2, 3, 4, 5].map((id) => `req-fn-a-${id}`));
      expect(peakOpen, 'Invoke requests open at once at the server').to.equal(3);
      // The first batch found three idle runners; from then on the two batches take turns.
      expect(arrivals, 'the order the server saw the calls in: each batch in its own order, the batches in turn').to.deep.equal([
        'fn-a:5',
        'fn-a:3',
        'fn-a:1',
        'fn-a:4',
        'fn-b:14',
        'fn-a:2',
        'fn-b:11',
        'fn-b:13',
        'fn-b:12',
      ]);
    } finally {
      invoker.close();
    }
  });

  it('sends a small batch handed over behind a large one within a turn, not after all of the large one', async () => {
    const invoker = createInvoker({ defaultRegion: 'us-east-1', endpoint, credentials: CREDENTIALS, parallelism: 2 });
    try {
      const deep = invoker.invokeBatch(
        { name: 'fn-deep' },
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      const small = invoker.invokeBatch({ name: 'fn-small' }, [100]);
      const [d, s] = await Promise.all([deep, small]);
      expect(s.map(outcome)).to.deep.equal(['100 accepted']);
      expect(d.filter((r) => r.accepted)).to.have.length(20);
      // Two calls of the deep batch were open when the small one came, and the deep batch's turn came first:
      // first in, first out would have sent all twenty before it.
      expect(arrivals.indexOf('fn-small:100'), 'calls the server saw before the small batch').to.be.at.most(3);
    } finally {
      invoker.close();
    }
  });

  it('stops sending the rest of a throttled batch, and only that batch', async () => {
    const invoker = createInvoker({ defaultRegion: 'us-east-1', endpoint, credentials: CREDENTIALS, parallelism: 1 });
    throttled.add('fn-throttled');
    try {
      const [a, b] = await Promise.all([
        invoker.invokeBatch({ name: 'fn-throttled' }, [1, 2, 3]),
        invoker.invokeBatch({ name: 'fn-fine' }, [7, 8]),
      ]);
      expect(a.map(outcome)).to.deep.equal(['1 throttled sent=true', '2 throttled sent=false', '3 throttled sent=false']);
      expect(b.map(outcome)).to.deep.equal(['7 accepted', '8 accepted']);
      expect(arrivals, 'calls the server saw').to.deep.equal(['fn-throttled:1', 'fn-fine:7', 'fn-fine:8']);
      expect(invoker.inFlight()).to.equal(0);
    } finally {
      invoker.close();
    }
  });

  it('answers an empty batch at once', async () => {
    const invoker = createInvoker({ defaultRegion: 'us-east-1', endpoint, credentials: CREDENTIALS, parallelism: 2 });
    try {
      expect(await invoker.invokeBatch({ name: 'fn-a' }, [])).to.deep.equal([]);
      expect(invoker.inFlight()).to.equal(0);
      expect(arrivals).to.deep.equal([]);
    } finally {
      invoker.close();
    }
  });
});

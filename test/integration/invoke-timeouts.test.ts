// An Invoke endpoint that takes the connection and never answers (a black-holed route, a stuck proxy) must
// not hold the controller's invoke slots for ever: each call gives up after the request timeout as a
// transient failure (its row stays `created` and is invoked again after a backoff), and the slot is free
// again. Against a real TCP server that never answers, through the real AWS SDK.
import net from 'node:net';
import { expect } from 'chai';
import { createInvoker, type InvokeResult } from '../../src/lambda/invoker.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('an Invoke endpoint that never answers (real TCP server, real AWS SDK)', function () {
  this.timeout(30_000);
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  let endpoint: string;

  before(async () => {
    server = net.createServer((socket) => {
      // Reads the request and says nothing, for as long as the client keeps the connection.
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the silent server has no TCP address');
    endpoint = `http://127.0.0.1:${address.port}`;
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('gives up on each call after the request timeout, as a transient failure, and frees its slot', async () => {
    const invoker = createInvoker({
      defaultRegion: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      parallelism: 1,
      requestTimeoutMs: 500,
    });
    try {
      const started = performance.now();
      const outcome = await Promise.race([
        invoker.invokeBatch({ name: 'silent' }, [1, 2]),
        sleep(15_000).then(() => 'still waiting' as const),
      ]);
      const seconds = (performance.now() - started) / 1000;
      expect(outcome, 'the batch of two calls, one slot, 500 ms timeout, after 15 s').to.not.equal('still waiting');
      const results = outcome as InvokeResult[];
      expect(
        results.map((r) => (r.accepted ? 'accepted' : `${r.failure.kind} ${r.failure.code} sent=${r.sent}`)),
        'what each call came to',
      ).to.deep.equal(['transient TimeoutError sent=true', 'transient TimeoutError sent=true']);
      expect(seconds, 'two calls one after the other, each given up after 0.5 s').to.be.within(0.9, 5);
      expect(invoker.inFlight(), 'calls in flight or waiting afterwards').to.equal(0);
    } finally {
      invoker.close();
    }
  });
});

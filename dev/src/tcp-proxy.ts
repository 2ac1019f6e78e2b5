// A TCP proxy that a test controls, to cut one client off from a server while everything else still
// reaches it (a network partition). While partitioned, nothing crosses in either direction: bytes wait,
// as they would behind a black hole while TCP retransmits, and new connections are held unanswered.
// Healing lets everything through again, late bytes included, or resets the held connections.
import net from 'node:net';

export interface TcpProxy {
  /** host:port clients connect to. */
  readonly host: string;
  readonly port: number;
  /** Stops all traffic, both ways, on every connection, and holds new ones. */
  partition(): void;
  /** Lets traffic through again: `resume` delivers what waited; `reset` destroys the held connections. */
  heal(mode?: 'resume' | 'reset'): void;
  /**
   * The connections open now go silent for ever, both ways, with no reset (as a NAT's idle timeout or a
   * failover drops a flow); new connections pass as before.
   */
  dropExistingSilently(): void;
  readonly partitioned: boolean;
  /** Connections accepted since the start. */
  readonly accepted: number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream?: net.Socket;
  /** Bytes that arrived while partitioned, per direction, in order. */
  toUpstream: Buffer[];
  toClient: Buffer[];
  /** Dropped silently: bytes in either direction are discarded. */
  dropped?: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }, listen: { host?: string } = {}): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let partitioned = false;
  let accepted = 0;

  const forward = (pair: Pair, direction: 'toUpstream' | 'toClient', chunk: Buffer) => {
    if (pair.dropped) return;
    const to = direction === 'toUpstream' ? pair.upstream : pair.client;
    if (partitioned || !to || pair[direction].length > 0) pair[direction].push(chunk);
    else to.write(chunk);
  };
  const flush = (pair: Pair) => {
    if (pair.upstream) for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
    for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
  };
  const connect = (pair: Pair) => {
    if (pair.client.destroyed || pair.upstream) return;
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('data', (chunk: Buffer) => forward(pair, 'toClient', chunk));
    upstream.on('error', () => pair.client.destroy());
    upstream.on('close', () => pair.client.destroy());
    upstream.on('connect', () => {
      if (!partitioned) flush(pair);
    });
  };

  const server = net.createServer((client) => {
    accepted += 1;
    const pair: Pair = { client, toUpstream: [], toClient: [] };
    pairs.add(pair);
    client.on('data', (chunk: Buffer) => forward(pair, 'toUpstream', chunk));
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    // A connection made during a partition is held: it reaches the server only once the partition heals.
    if (!partitioned) connect(pair);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listen.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');

  return {
    host: listen.host ?? '127.0.0.1',
    port: address.port,
    get partitioned() {
      return partitioned;
    },
    get accepted() {
      return accepted;
    },
    partition() {
      partitioned = true;
    },
    heal(mode = 'resume') {
      partitioned = false;
      for (const pair of pairs) {
        if (mode === 'reset') {
          pair.client.resetAndDestroy();
          pair.upstream?.destroy();
          continue;
        }
        if (pair.upstream) flush(pair);
        else connect(pair);
      }
      if (mode === 'reset') pairs.clear();
    },
    dropExistingSilently() {
      for (const pair of pairs) pair.dropped = true;
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream?.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

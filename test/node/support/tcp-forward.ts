// A TCP forwarder: listens on an address the pods can reach and relays each connection to a server that
// listens on loopback only (the test's Postgres). Stopping it closes every relayed connection.
import net from 'node:net';

export interface TcpForward {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function forwardTcp(args: { listenHost: string; targetHost: string; targetPort: number }): Promise<TcpForward> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: args.targetHost, port: args.targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, args.listenHost, () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the TCP forwarder has no address');
  return {
    host: args.listenHost,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

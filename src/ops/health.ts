// /healthz, /readyz and /metrics on one small HTTP server.
import http from 'node:http';
import type { Metrics } from './metrics.ts';

export interface HealthServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /** Live: the process is working. */
  healthy(): boolean;
  /** Ready: caches synced, able to serve. */
  ready(): boolean;
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (ok: boolean) => {
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ready\n');
    };
    if (path === '/healthz' || path === '/livez') return answer(options.healthy());
    if (path === '/readyz') return answer(options.ready());
    if (path === '/metrics') {
      options.metrics.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': options.metrics.registry.contentType });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500);
          res.end();
        });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // An empty host listens on every address, IPv6 and IPv4 (Node's default: `::`, dual-stack, or 0.0.0.0 without IPv6).
    if (options.host) server.listen(options.port, options.host, () => resolve());
    else server.listen(options.port, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

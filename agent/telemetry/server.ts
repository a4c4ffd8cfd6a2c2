/**
 * The agent's node-level telemetry ports: Prometheus exposition on 15020 (/metrics) and
 * readiness on 15021 (/healthz/ready), both plain HTTP for scrapers and kubelet probes.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { Registry } from 'prom-client';
import { parseHostPort } from '../util/host-port.js';

export async function startMetricsServer(registry: Registry, address: string): Promise<http.Server> {
  return listen(address, (req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      (err: unknown) => {
        res.writeHead(500).end(`metrics collection failed: ${(err as Error).message}\n`);
      },
    );
  });
}

export async function startReadinessServer(isReady: () => boolean, address: string): Promise<http.Server> {
  return listen(address, (req, res) => {
    const ready = (req.url ?? '').startsWith('/healthz/ready') && isReady();
    res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
  });
}

async function listen(address: string, handler: http.RequestListener): Promise<http.Server> {
  const { host, port } = parseHostPort(address);
  const server = http.createServer(handler);
  server.listen(port, host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  return server;
}

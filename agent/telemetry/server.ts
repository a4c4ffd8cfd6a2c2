/**
 * The agent's node-level telemetry ports: Prometheus exposition on 15020 (/metrics) and
 * readiness on 15021 (/healthz/ready), both plain HTTP for scrapers and kubelet probes.
 *
 * Node-level ports (these and the admin port) listen with SO_REUSEPORT, so a new agent binds
 * them while the old one still runs (DaemonSet `maxSurge: 1, maxUnavailable: 0`); the old one
 * closes them first when it starts draining. While both listen, each new connection reaches one
 * of them; readiness answers 503 from an agent that a newer one superseded, so a probe meant for
 * the new agent never reads the old one's "ready".
 */
import http from 'node:http';
import { once } from 'node:events';
import { isIPv4 } from 'node:net';
import type { Registry } from 'prom-client';
import { parseHostPort } from '../util/host-port.js';
import { createTcpSocket } from '../../native/index.js';
import { listenOnFd } from '../util/listen.js';

export async function startMetricsServer(registry: Registry, address: string): Promise<http.Server> {
  return listenNodePort(address, (req, res) => {
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

/** `readiness()` says ready, or why not ("starting", "draining", "superseded by a newer agent"). */
export async function startReadinessServer(readiness: () => true | string, address: string): Promise<http.Server> {
  return listenNodePort(address, (req, res) => {
    const state = (req.url ?? '').startsWith('/healthz/ready') ? readiness() : 'try /healthz/ready';
    res.writeHead(state === true ? 200 : 503, { 'content-type': 'text/plain' }).end(state === true ? 'ready\n' : `not ready: ${state}\n`);
  });
}

/**
 * An HTTP server on a node-level port, with SO_REUSEPORT (see the module comment). Addresses
 * that are not IPv4 literals (a host name, IPv6) fall back to an ordinary listen.
 */
export async function listenNodePort(address: string, handler: http.RequestListener): Promise<http.Server> {
  const { host, port } = parseHostPort(address);
  const server = http.createServer(handler);
  if (isIPv4(host)) {
    await listenOnFd(server, createTcpSocket({ reuseAddress: true, reusePort: true, bind: { address: host, port }, listenBacklog: 511 }));
    return server;
  }
  server.listen(port, host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  return server;
}

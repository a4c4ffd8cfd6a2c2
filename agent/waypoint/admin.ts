/**
 * The admin API of the L7 proxies (the waypoint and the ingress gateway, which share it):
 * `/healthz/ready` (200 or 503 with the reason) and `/config_dump` (the proxy's own JSON), as
 * Envoy's admin port has them. JSON, indented for a person with curl.
 */
import type http from 'node:http';
import { listenNodePort } from '../telemetry/server.js';

export interface AdminTarget {
  readiness(): true | string;
  configDump(): object;
}

/** The admin request handler of `target`. */
export function adminHandler(target: AdminTarget): http.RequestListener {
  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, null, 1) + '\n');
    };
    if (url === '/healthz/ready') {
      const r = target.readiness();
      return send(r === true ? 200 : 503, { ready: r === true, reason: r === true ? undefined : r });
    }
    if (url === '/config_dump') return send(200, target.configDump());
    send(404, { error: `no such endpoint ${url}; try /config_dump, /healthz/ready` });
  };
}

/** Serves `target`'s admin API on `address` (host:port). */
export function startAdmin(address: string, target: AdminTarget): Promise<http.Server> {
  return listenNodePort(address, adminHandler(target));
}

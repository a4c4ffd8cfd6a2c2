/**
 * HAProxy pair (Debian's package, one thread each): client pod -> client-node HAProxy
 * (plaintext) -> mutual TLS 1.3 -> server-node HAProxy -> server pod (plaintext). Each HAProxy
 * runs in its node's network namespace, started fresh per scenario and stopped after. In `tcp`
 * mode (the L4 scenarios) it relays bytes; in `http` mode (the l7 scenario) it parses every
 * request on the HTTP/1.1 and h2c ports, the L7 proxy a user could put there instead of a mesh.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NetnsProcess } from '../netns-process.js';
import { connectionsWithin, nofileLimit } from '../proc-stats.js';
import type { Target } from '../loadgen.js';
import { WORK_DIR, type BenchLab } from '../lab-env.js';
import { BenchError } from '../errors.js';
import { makeCerts, type BenchCerts } from '../certs.js';
import { haproxyConfig, haproxyHttpConfig, TLS_PORT_OFFSET } from '../haproxy-config.js';
import { SERVICE_PORTS } from './direct.js';
import type { Service, System } from './system.js';

/** The L4 scenarios' services (the l7 scenario has its own HTTP-mode pair, haproxy-http.ts). */
const TCP_PORTS = [SERVICE_PORTS.rr, SERVICE_PORTS.sink, SERVICE_PORTS.iperf];
const HTTP_PORTS = { h1Port: SERVICE_PORTS.http, h2Port: SERVICE_PORTS.h2 };

/** `HAProxy version 2.6.12-1+deb12u1 2023/...` -> the version field; undefined when not installed. */
export function haproxyVersion(): string | undefined {
  try {
    const out = execFileSync('haproxy', ['-v'], { encoding: 'utf8' });
    return /version\s+(\S+)/i.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

export class HaproxySystem implements System {
  readonly name = 'haproxy-mtls' as const;
  #procs: NetnsProcess[] = [];
  #listenIp = '';
  #certs: BenchCerts | undefined;
  readonly #mode: 'tcp' | 'http';

  constructor(mode: 'tcp' | 'http' = 'tcp') {
    this.#mode = mode;
  }

  async start(lab: BenchLab): Promise<void> {
    const dir = join(WORK_DIR, 'haproxy');
    await mkdir(dir, { recursive: true });
    this.#certs ??= await makeCerts(dir);
    const certs = this.#certs;
    const clientCfg = join(dir, 'client.cfg');
    const serverCfg = join(dir, 'server.cfg');
    this.#listenIp = lab.clientNode.fabricIP;
    // HAProxy refuses to start when 2 x maxconn fds exceed what it may open: stay under the limit.
    const maxconn = Math.min(30_000, connectionsWithin(nofileLimit(), 100));
    const http = this.#mode === 'http';
    const PORTS = http ? [HTTP_PORTS.h1Port, HTTP_PORTS.h2Port] : TCP_PORTS;
    const client = { role: 'client', ports: PORTS, caFile: certs.caFile, certPem: certs.clientPem, maxconn, listenIp: lab.clientNode.fabricIP, peerIp: lab.serverNode.fabricIP } as const;
    const server = { role: 'server', ports: PORTS, caFile: certs.caFile, certPem: certs.serverPem, maxconn, listenIp: lab.serverNode.fabricIP, podIp: lab.server.ip } as const;
    await writeFile(clientCfg, http ? haproxyHttpConfig({ ...client, ...HTTP_PORTS }) : haproxyConfig(client));
    await writeFile(serverCfg, http ? haproxyHttpConfig({ ...server, ...HTTP_PORTS }) : haproxyConfig(server));
    try {
      // -db: foreground, no daemon: the started pid IS the proxy whose CPU is measured.
      this.#procs.push(
        await NetnsProcess.start({
          what: 'server-side haproxy',
          netns: lab.serverNode.netns,
          argv: ['haproxy', '-db', '-f', serverCfg],
          cwd: dir,
          log: join(dir, 'server.log'),
          ports: PORTS.map((p) => p + TLS_PORT_OFFSET),
          readyTimeoutMs: 10_000,
        }),
      );
      this.#procs.push(
        await NetnsProcess.start({
          what: 'client-side haproxy',
          netns: lab.clientNode.netns,
          argv: ['haproxy', '-db', '-f', clientCfg],
          cwd: dir,
          log: join(dir, 'client.log'),
          ports: PORTS,
          readyTimeoutMs: 10_000,
        }),
      );
    } catch (err) {
      await this.stop();
      throw new BenchError(`haproxy-mtls did not start: ${(err as Error).message}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    for (const p of this.#procs.splice(0)) await p.stop();
  }

  target(service: Service): Target {
    return { host: this.#listenIp, port: SERVICE_PORTS[service] };
  }

  proxyPids(): number[] {
    return this.#procs.map((p) => p.pid);
  }
}

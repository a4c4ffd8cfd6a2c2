/**
 * The ingress scenario's peer: a TLS-terminating reverse proxy in front of the same backend,
 *   outside pod -> TLS -> reverse proxy (client-node's namespace) -> HTTP/1.1 keep-alive -> server pod.
 * Issue 13 names nginx (Debian's package); it is used when /usr/sbin/nginx exists
 * (WEFT_BENCH_REVERSE_PROXY=haproxy|nginx chooses), else HAProxy in HTTP mode (installed here:
 * nginx is not, and apt cannot reach its mirror on this machine). One worker / thread each.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NetnsProcess } from '../netns-process.js';
import { connectionsWithin, nofileLimit } from '../proc-stats.js';
import { WORK_DIR, type BenchLab } from '../lab-env.js';
import { BenchError } from '../errors.js';
import { INGRESS_HOST } from '../certs.js';
import { haproxyIngressConfig, nginxIngressConfig } from '../haproxy-config.js';
import type { Target } from '../loadgen.js';
import { ingressCerts, INGRESS_PORT, type IngressSystem } from './gateway.js';
import { SERVICE_PORTS } from './direct.js';
import type { Service } from './system.js';

export const NGINX = '/usr/sbin/nginx';

export type ReverseProxyKind = 'haproxy' | 'nginx';

/** nginx where it is installed (the peer), else HAProxy; WEFT_BENCH_REVERSE_PROXY overrides. */
export function reverseProxyKind(env = process.env, nginxInstalled = existsSync(NGINX)): ReverseProxyKind {
  const asked = env['WEFT_BENCH_REVERSE_PROXY'];
  if (asked === 'haproxy' || asked === 'nginx') return asked;
  if (asked !== undefined && asked !== '') throw new BenchError(`WEFT_BENCH_REVERSE_PROXY is haproxy or nginx, not ${asked}`);
  return nginxInstalled ? 'nginx' : 'haproxy';
}

/** `nginx version: nginx/1.22.1` -> 1.22.1; undefined when not installed. */
export function nginxVersion(): string | undefined {
  try {
    return /nginx\/(\S+)/.exec(execFileSync(NGINX, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) + '')?.[1];
  } catch (err) {
    // nginx -v prints to stderr.
    return /nginx\/(\S+)/.exec(String((err as { stderr?: unknown }).stderr ?? ''))?.[1];
  }
}

export class ReverseProxySystem implements IngressSystem {
  readonly name = 'reverse-proxy' as const;
  readonly kind: ReverseProxyKind;
  #proc: NetnsProcess | undefined;
  #listenIp = '';
  #tls: { caFile: string; servername: string } | undefined;

  constructor(kind: ReverseProxyKind = reverseProxyKind()) {
    this.kind = kind;
  }

  get tls(): { caFile: string; servername: string } {
    if (this.#tls === undefined) throw new BenchError('the reverse proxy is not started');
    return this.#tls;
  }

  async start(lab: BenchLab): Promise<void> {
    const dir = join(WORK_DIR, 'reverse-proxy');
    await mkdir(dir, { recursive: true });
    const certs = await ingressCerts();
    this.#tls = { caFile: certs.caFile, servername: INGRESS_HOST };
    this.#listenIp = lab.clientNode.fabricIP;
    const maxconn = Math.min(30_000, connectionsWithin(nofileLimit(), 100));
    const common = { maxconn, listenIp: this.#listenIp, listenPort: INGRESS_PORT, podIp: lab.server.ip, podPort: SERVICE_PORTS.http };
    const cfg = join(dir, this.kind === 'nginx' ? 'nginx.conf' : 'haproxy.cfg');
    let argv: string[];
    if (this.kind === 'nginx') {
      await mkdir(join(dir, 'body'), { recursive: true });
      await mkdir(join(dir, 'proxy'), { recursive: true });
      await writeFile(cfg, nginxIngressConfig({ ...common, crt: certs.ingress.crt, key: certs.ingress.key, dir }));
      argv = [NGINX, '-c', cfg, '-p', dir];
    } else {
      await writeFile(cfg, haproxyIngressConfig({ ...common, certPem: certs.ingress.pem }));
      argv = ['haproxy', '-db', '-f', cfg];
    }
    try {
      this.#proc = await NetnsProcess.start({ what: `reverse proxy (${this.kind})`, netns: lab.clientNode.netns, argv, cwd: dir, log: join(dir, `${this.kind}.log`), ports: [INGRESS_PORT], readyTimeoutMs: 10_000 });
    } catch (err) {
      throw new BenchError(`the reverse proxy (${this.kind}) did not start: ${(err as Error).message}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    await this.#proc?.stop();
    this.#proc = undefined;
  }

  target(service: Service): Target {
    if (service !== 'http') throw new BenchError(`the reverse proxy serves the HTTP service only, not ${service}`);
    return { host: this.#listenIp, port: INGRESS_PORT };
  }

  ingressPids(): number[] {
    return this.#proc === undefined ? [] : [this.#proc.pid];
  }

  proxyPids(): number[] {
    return this.ingressPids();
  }
}

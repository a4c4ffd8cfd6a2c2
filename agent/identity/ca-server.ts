/**
 * The CA as an HTTPS service:
 *   POST /v1/sign   {csr, identity} with `authorization: Bearer <token>`
 *        -> 200 {certificate, chain[], trustBundle[], notBefore, notAfter}
 *        -> 400 bad CSR / identity, 401 bad token, 403 identity not on the caller's node
 *   GET  /v1/bundle -> 200 {trustDomain, roots[]}
 * Errors are JSON {error: WEFT_ERR_*, message}. The serving certificate is issued by the CA
 * itself (so agents trust it through the same roots) and re-issued at half-life.
 */
import { CA_SERVING_LIFETIME_MS as DEFAULT_SERVING_LIFETIME_MS, DEFAULT_CLUSTER_DOMAIN } from '../config.js';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { WeftError, isWeftError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { caResultFor, type CertificateAuthority } from './ca.js';
import type { CaCaller, NodeAuthenticator } from './ca-types.js';

const MAX_BODY_BYTES = 64 * 1024;
export const CA_SERVICE_NAME = 'weft-ca';
export const DEFAULT_CA_NAMESPACE = 'weft-system';

/**
 * The names a client in the cluster may use for the CA's Service: `weft-ca`, `weft-ca.<ns>`,
 * `weft-ca.<ns>.svc`, `weft-ca.<ns>.svc.<cluster-domain>` (the DaemonSet uses the .svc form).
 */
export function caServiceDnsNames(namespace = DEFAULT_CA_NAMESPACE, clusterDomain = DEFAULT_CLUSTER_DOMAIN, service = CA_SERVICE_NAME): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.${clusterDomain}`];
}

export interface CaServerOptions {
  ca: CertificateAuthority;
  authenticator: NodeAuthenticator;
  logger?: Logger;
  /** Extra DNS names for the serving certificate (localhost and the Service's names are always present). */
  dnsNames?: string[];
  /** Namespace of the CA's Service, for its DNS names (default weft-system). */
  namespace?: string;
  /** The cluster's DNS domain, for `weft-ca.<ns>.svc.<domain>` (default cluster.local). */
  clusterDomain?: string;
  /** Extra IPv4 addresses for the serving certificate (the listen address is always present). */
  ipAddresses?: string[];
  servingLifetimeMs?: number;
}

/** Wire shape of a /v1/sign answer. */
export interface SignResponseBody {
  certificate: string;
  chain: string[];
  trustBundle: string[];
  notBefore: string;
  notAfter: string;
}

const STATUS_BY_RESULT = { bad_request: 400, unauthenticated: 401, unauthorized: 403, error: 500, signed: 200 } as const;

export class CaServer {
  readonly #ca: CertificateAuthority;
  readonly #auth: NodeAuthenticator;
  readonly #log: Logger;
  readonly #opts: CaServerOptions;
  #server: Server | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #ips: string[] = [];

  constructor(opts: CaServerOptions) {
    this.#ca = opts.ca;
    this.#auth = opts.authenticator;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'ca-server' });
    this.#opts = opts;
  }

  /** Starts serving; resolves with the bound address (port 0 picks a free port). */
  async listen(port: number, host: string): Promise<AddressInfo> {
    if (this.#server !== undefined) throw new WeftError('WEFT_ERR_CONFIG', 'CA server already listening');
    this.#ips = [...new Set([...(isIP(host) === 4 && host !== '0.0.0.0' ? [host] : []), '127.0.0.1', ...(this.#opts.ipAddresses ?? [])])];
    const server = createServer({ ...this.#servingContext(), minVersion: 'TLSv1.2', requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#fail(res, err, {}));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    this.#log.info({ address: address.address, port: address.port }, 'CA listening');
    return address;
  }

  address(): AddressInfo | undefined {
    return (this.#server?.address() as AddressInfo | null) ?? undefined;
  }

  async close(): Promise<void> {
    clearTimeout(this.#renewTimer);
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** Issues a serving certificate and schedules its replacement at half-life. */
  #servingContext(): { key: string; cert: string } {
    const lifetime = this.#opts.servingLifetimeMs ?? DEFAULT_SERVING_LIFETIME_MS;
    const issued = this.#ca.issueServingCertificate({
      dnsNames: [...new Set(['localhost', ...caServiceDnsNames(this.#opts.namespace, this.#opts.clusterDomain), ...(this.#opts.dnsNames ?? [])])],
      ipAddresses: this.#ips,
      lifetimeMs: lifetime,
    });
    clearTimeout(this.#renewTimer);
    this.#renewTimer = setTimeout(() => {
      this.#server?.setSecureContext(this.#servingContext());
      this.#log.info('re-issued the CA serving certificate');
    }, Math.max(60_000, (issued.notAfter.getTime() - Date.now()) / 2));
    this.#renewTimer.unref();
    return { key: issued.keyPem, cert: [issued.certPem, ...issued.chainPem].join('') };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/v1/bundle') {
      if (req.method !== 'GET') return send(res, 405, { error: 'method_not_allowed', message: 'use GET' });
      return send(res, 200, { trustDomain: this.#ca.trustDomain, roots: this.#ca.trustBundle() });
    }
    if (path !== '/v1/sign') return send(res, 404, { error: 'not_found', message: `no such endpoint ${path}` });
    if (req.method !== 'POST') return send(res, 405, { error: 'method_not_allowed', message: 'use POST' });
    const remote = req.socket.remoteAddress;

    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    const caller: CaCaller | undefined = this.#auth.authenticateCaller !== undefined ? await this.#auth.authenticateCaller(token) : await this.#auth.authenticate(token).then((n) => (n === undefined ? undefined : { node: n }));
    const node = caller?.node;
    if (caller === undefined || node === undefined) {
      // Drain the body so the connection stays usable, but do not parse what a stranger sent.
      req.resume();
      const err = new WeftError('WEFT_ERR_CA_UNAUTHENTICATED', token === '' ? 'no bearer token' : 'token not accepted');
      return this.#fail(res, err, { remote });
    }

    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      // An oversized body is still arriving: do not keep the connection for another request.
      if (!req.complete) res.setHeader('connection', 'close');
      return this.#fail(res, new WeftError('WEFT_ERR_CA_BAD_REQUEST', 'request body is not JSON (or too large)', { cause: err }), { node, remote });
    }
    const { csr, identity } = (body ?? {}) as { csr?: unknown; identity?: unknown };
    if (typeof csr !== 'string' || typeof identity !== 'string') {
      return this.#fail(res, new WeftError('WEFT_ERR_CA_BAD_REQUEST', 'body must be {csr: string, identity: string}'), { node, remote });
    }
    let signed;
    try {
      // sign() counts and logs its own refusals.
      signed = await this.#ca.sign(csr, identity, node, caller.workload);
    } catch (err) {
      return answerError(res, err);
    }
    const out: SignResponseBody = {
      certificate: signed.certPem,
      chain: signed.chainPem,
      trustBundle: signed.trustBundle,
      notBefore: signed.notBefore.toISOString(),
      notAfter: signed.notAfter.toISOString(),
    };
    send(res, 200, out);
  }

  #fail(res: ServerResponse, err: unknown, context: { node?: string; remote?: string | undefined }): void {
    this.#ca.recordRefusal(err, { ...(context.node === undefined ? {} : { node: context.node }), ...(context.remote === undefined ? {} : { remote: context.remote }) });
    answerError(res, err);
  }
}

function answerError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = STATUS_BY_RESULT[caResultFor(err)];
  const code = isWeftError(err) ? err.code : 'WEFT_ERR_CA_UNAVAILABLE';
  // Internal failures are not described to the caller; refusals are (they say what to fix).
  const message = status === 500 ? 'internal error' : (err as Error).message;
  send(res, status, { error: code, message });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        // Answer (400) instead of destroying the socket, which left the client with no answer
        // at all; the rest is drained (bounded by requestTimeout) and the connection closed.
        req.removeAllListeners('data');
        req.resume();
        reject(new Error(`body larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

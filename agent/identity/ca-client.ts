/** The two ways an agent reaches a CA: over HTTPS (ca-server.ts) or in the same process. */
import { CA_REQUEST_TIMEOUT_MS } from '../config.js';
import { request } from 'node:https';
import { WeftError, type ErrorCode } from '../errors.js';
import type { CertificateAuthority } from './ca.js';
import type { SignResponseBody } from './ca-server.js';
import type { CaClient, SignedCertificate } from './ca-types.js';

/** Calls a CertificateAuthority directly, as `node` (the lab's in-process CA). */
export class InProcessCaClient implements CaClient {
  readonly #ca: CertificateAuthority;
  readonly #node: string;
  constructor(ca: CertificateAuthority, node: string) {
    this.#ca = ca;
    this.#node = node;
  }
  sign(csrPem: string, identity: string): Promise<SignedCertificate> {
    return this.#ca.sign(csrPem, identity, this.#node);
  }
  async bundle(): Promise<string[]> {
    return this.#ca.trustBundle();
  }
}

export interface HttpCaClientOptions {
  /** e.g. https://127.0.0.1:15012 */
  url: string;
  /** The agent's bearer token (a function, so a projected token file can be re-read). */
  token: string | (() => string | Promise<string>);
  /** Roots that the CA's serving certificate chains to (PEM each; a function, so a watched bundle file is followed). */
  caCertificates: string[] | (() => string[]);
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'WEFT_ERR_CA_BAD_REQUEST',
  401: 'WEFT_ERR_CA_UNAUTHENTICATED',
  403: 'WEFT_ERR_CA_UNAUTHORIZED',
};

export class HttpCaClient implements CaClient {
  readonly #url: URL;
  readonly #opts: HttpCaClientOptions;

  constructor(opts: HttpCaClientOptions) {
    this.#url = new URL(opts.url);
    if (this.#url.protocol !== 'https:') throw new WeftError('WEFT_ERR_CONFIG', `CA URL must be https: ${opts.url}`);
    this.#opts = opts;
  }

  async sign(csrPem: string, identity: string): Promise<SignedCertificate> {
    const token = typeof this.#opts.token === 'function' ? await this.#opts.token() : this.#opts.token;
    const body = (await this.#call('POST', '/v1/sign', token, JSON.stringify({ csr: csrPem, identity }))) as Partial<SignResponseBody>;
    if (typeof body.certificate !== 'string' || !Array.isArray(body.chain) || !Array.isArray(body.trustBundle) || typeof body.notAfter !== 'string' || typeof body.notBefore !== 'string') {
      throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'CA answered /v1/sign without a certificate');
    }
    return {
      certPem: body.certificate,
      chainPem: body.chain,
      trustBundle: body.trustBundle,
      notBefore: new Date(body.notBefore),
      notAfter: new Date(body.notAfter),
    };
  }

  async bundle(): Promise<string[]> {
    const body = (await this.#call('GET', '/v1/bundle', undefined, undefined)) as { roots?: unknown };
    if (!Array.isArray(body.roots) || !body.roots.every((r) => typeof r === 'string')) {
      throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'CA answered /v1/bundle without roots');
    }
    return body.roots as string[];
  }

  #call(method: string, path: string, token: string | undefined, payload: string | undefined): Promise<unknown> {
    const url = new URL(path, this.#url);
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(Buffer.byteLength(payload));
      }
      const req = request(url, { method, headers, ca: typeof this.#opts.caCertificates === 'function' ? this.#opts.caCertificates() : this.#opts.caCertificates, minVersion: 'TLSv1.2', timeout: this.#opts.timeoutMs ?? CA_REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new WeftError('WEFT_ERR_CA_UNAVAILABLE', `reading the CA's answer failed`, { cause: err })));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch (err) {
            reject(new WeftError('WEFT_ERR_CA_UNAVAILABLE', `CA answered ${res.statusCode} with a body that is not JSON`, { cause: err }));
            return;
          }
          const status = res.statusCode ?? 0;
          if (status === 200) {
            resolve(parsed);
            return;
          }
          const message = (parsed as { message?: unknown }).message;
          reject(new WeftError(CODE_BY_STATUS[status] ?? 'WEFT_ERR_CA_UNAVAILABLE', `CA refused (${status}): ${typeof message === 'string' ? message : 'no reason given'}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#opts.timeoutMs ?? CA_REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', (err) => reject(new WeftError('WEFT_ERR_CA_UNAVAILABLE', `cannot reach the CA at ${this.#url.origin}: ${err.message}`, { cause: err })));
      req.end(payload);
    });
  }
}

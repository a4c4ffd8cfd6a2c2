/**
 * The certificate authority: holds the signing key, checks each request (well-formed SPIFFE ID
 * of our trust domain, valid CSR, identity allowed on the caller's node) and signs short-lived
 * workload certificates. Usable in-process (the lab) and behind the HTTPS service (ca-server.ts).
 */
import { generateKeyPairSync, createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, type Registry } from 'prom-client';
import { WeftError, isWeftError, type ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { CaRequestResult, IdentityAuthorizer, SignedCertificate } from './ca-types.js';
import { splitPemCertificates } from './der.js';
import { tryParseSpiffeId } from './spiffe.js';
import { CA_ROOT_LIFETIME_MS as ROOT_LIFETIME_MS, CERT_BACKDATE_MS as BACKDATE_MS, DEFAULT_TRUST_DOMAIN, DEFAULT_WORKLOAD_LIFETIME_MS } from '../config.js';
import { buildCertificate, issuerFromCertificate, verifyCsr, type Issuer } from './x509.js';


/** Files of a CA directory (the layout Istio's plugged-in CA uses, so operators know it). */
export const CA_FILES = {
  key: 'ca-key.pem',
  cert: 'ca-cert.pem',
  chain: 'cert-chain.pem',
  roots: 'root-cert.pem',
} as const;

/** Signing key, signing certificate, its parents, and the roots. */
export interface CaKeyMaterial {
  keyPem: string;
  /** The certificate of the signing key: a self-signed root or an operator's intermediate. */
  certPem: string;
  /** Certificates between `certPem` and a root, if any (non-root, issuer order). */
  intermediatesPem?: string[];
  /** Trusted roots (at least the one `certPem` chains to). */
  rootsPem: string[];
}

export interface CertificateAuthorityOptions {
  authorizer: IdentityAuthorizer;
  trustDomain?: string;
  /** Lifetime of workload certificates (default 24 h). */
  lifetimeMs?: number;
  logger?: Logger;
  /** Where `weft_ca_requests_total{result}` is registered; not counted when omitted. */
  registry?: Registry;
  /** Milliseconds since the epoch (injectable for tests). */
  now?: () => number;
}

const RESULT_BY_CODE: Partial<Record<ErrorCode, CaRequestResult>> = {
  WEFT_ERR_CA_BAD_REQUEST: 'bad_request',
  WEFT_ERR_IDENTITY_INVALID: 'bad_request',
  WEFT_ERR_CA_UNAUTHENTICATED: 'unauthenticated',
  WEFT_ERR_CA_UNAUTHORIZED: 'unauthorized',
};

/** The metric label for a refusal or failure. */
export function caResultFor(err: unknown): CaRequestResult {
  return (isWeftError(err) && RESULT_BY_CODE[err.code]) || 'error';
}

function requestCounter(registry: Registry): Counter<'result'> {
  const name = 'weft_ca_requests_total';
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<'result'>;
  return new Counter({ name, help: 'Certificate signing requests handled by the CA, by result', labelNames: ['result'], registers: [registry] });
}

const secondFloor = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

/** 63 random bits, positive and minimally encoded (RFC 5280: at most 20 octets, positive). */
function randomSerial(): Buffer {
  const b = randomBytes(8);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b;
}

function generateEcKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly lifetimeMs: number;
  #issuer: Issuer;
  #issuerNotAfter: number;
  #chainPem: string[];
  #roots: string[];
  #authorizer: IdentityAuthorizer;
  #log: Logger;
  #counter: Counter<'result'> | undefined;
  #now: () => number;

  constructor(material: CaKeyMaterial, options: CertificateAuthorityOptions) {
    this.trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.lifetimeMs = options.lifetimeMs ?? DEFAULT_WORKLOAD_LIFETIME_MS;
    if (!(this.lifetimeMs >= 60_000)) throw new WeftError('WEFT_ERR_CONFIG', `certificate lifetime must be at least 1 minute, got ${this.lifetimeMs} ms`);
    this.#authorizer = options.authorizer;
    this.#log = (options.logger ?? silentLogger).child({ component: 'ca' });
    this.#counter = options.registry === undefined ? undefined : requestCounter(options.registry);
    this.#now = options.now ?? Date.now;
    const checked = validateMaterial(material);
    this.#issuer = issuerFromCertificate(material.certPem, checked.key);
    this.#issuerNotAfter = checked.notAfter;
    this.#chainPem = checked.chain;
    this.#roots = checked.roots;
  }

  /** A new self-signed root (ECDSA P-256, 10 years). */
  static generateRoot(trustDomain = DEFAULT_TRUST_DOMAIN, now: () => number = Date.now): CaKeyMaterial {
    const { privateKey, publicKey } = generateEcKey();
    const t = now();
    const certPem = buildCertificate({
      serial: randomSerial(),
      notBefore: secondFloor(t - BACKDATE_MS),
      notAfter: secondFloor(t + ROOT_LIFETIME_MS),
      subject: { organization: 'weft', commonName: `weft root CA (${trustDomain})` },
      publicKey,
      signingKey: privateKey,
      isCa: true,
    });
    return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem, rootsPem: [certPem] };
  }

  /**
   * Loads the CA from `dir` (ca-key.pem, ca-cert.pem, optional cert-chain.pem, root-cert.pem).
   * An operator places an intermediate from their PKI there; with no files at all, a new root
   * is generated and written (key mode 0600). A partial set is an error, never overwritten.
   */
  static async loadOrCreate(dir: string, options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const path = (f: string): string => join(dir, f);
    const exists = async (f: string): Promise<boolean> => access(path(f)).then(() => true, () => false);
    const [hasKey, hasCert, hasRoots] = await Promise.all([exists(CA_FILES.key), exists(CA_FILES.cert), exists(CA_FILES.roots)]);
    const log = (options.logger ?? silentLogger).child({ component: 'ca' });
    if (!hasKey && !hasCert && !hasRoots) {
      const material = CertificateAuthority.generateRoot(options.trustDomain, options.now);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(path(CA_FILES.key), material.keyPem, { mode: 0o600, flag: 'wx' });
      await writeFile(path(CA_FILES.cert), material.certPem, { flag: 'wx' });
      await writeFile(path(CA_FILES.roots), material.certPem, { flag: 'wx' });
      log.info({ dir }, 'generated a new self-signed root CA');
      return new CertificateAuthority(material, options);
    }
    if (!hasKey || !hasCert || !hasRoots) {
      throw new WeftError('WEFT_ERR_CA_LOAD', `CA directory ${dir} must hold ${CA_FILES.key}, ${CA_FILES.cert} and ${CA_FILES.roots} (or nothing, to generate a root)`);
    }
    try {
      const [keyPem, certPem, rootsText, chainText] = await Promise.all([
        readFile(path(CA_FILES.key), 'utf8'),
        readFile(path(CA_FILES.cert), 'utf8'),
        readFile(path(CA_FILES.roots), 'utf8'),
        readFile(path(CA_FILES.chain), 'utf8').catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return '';
          throw err;
        }),
      ]);
      const ca = new CertificateAuthority(
        { keyPem, certPem, intermediatesPem: splitPemCertificates(chainText), rootsPem: splitPemCertificates(rootsText) },
        options,
      );
      log.info({ dir, intermediate: ca.#chainPem.length > 0 }, 'loaded CA');
      return ca;
    } catch (err) {
      if (isWeftError(err)) throw err;
      throw new WeftError('WEFT_ERR_CA_LOAD', `reading CA files in ${dir} failed`, { cause: err });
    }
  }

  /** Root certificates (PEM each). */
  trustBundle(): string[] {
    return [...this.#roots];
  }

  /**
   * Signs `csrPem` for `identity` on behalf of an authenticated `node`. Rejects with
   * WEFT_ERR_CA_BAD_REQUEST (malformed identity or CSR) or WEFT_ERR_CA_UNAUTHORIZED (no pod with
   * that identity on the node). Every outcome is counted; refusals are logged with the reason.
   */
  async sign(csrPem: string, identity: string, node: string, workload?: { namespace: string; serviceAccount: string }): Promise<SignedCertificate> {
    try {
      const id = tryParseSpiffeId(identity);
      if (id === undefined) throw new WeftError('WEFT_ERR_CA_BAD_REQUEST', `identity is not a workload SPIFFE ID: ${JSON.stringify(identity)}`);
      if (id.trustDomain !== this.trustDomain) {
        throw new WeftError('WEFT_ERR_CA_BAD_REQUEST', `identity ${identity} is outside trust domain ${this.trustDomain}`);
      }
      const publicKey = verifyCsr(csrPem);
      // A workload's own token (a waypoint, a gateway) proves one service account: only its
      // identity, as Istio's CA allows (an agent's token stands for every pod of its node).
      if (workload !== undefined && (workload.namespace !== id.namespace || workload.serviceAccount !== id.serviceAccount)) {
        throw new WeftError('WEFT_ERR_CA_UNAUTHORIZED', `the token of service account ${workload.namespace}/${workload.serviceAccount} may only request its own identity, not ${identity}`);
      }
      if (!(await this.#authorizer.authorize(node, id))) {
        throw new WeftError('WEFT_ERR_CA_UNAUTHORIZED', `no pod of service account ${id.namespace}/${id.serviceAccount} runs on node ${node}`);
      }
      const now = this.#now();
      const notBefore = secondFloor(now - BACKDATE_MS);
      const notAfter = secondFloor(Math.min(now + this.lifetimeMs, this.#issuerNotAfter));
      const certPem = buildCertificate({
        serial: randomSerial(),
        notBefore,
        notAfter,
        publicKey,
        issuer: this.#issuer,
        signingKey: this.#issuer.key,
        isCa: false,
        uris: [identity],
      });
      this.#counter?.inc({ result: 'signed' });
      this.#log.debug({ node, identity, notAfter }, 'signed workload certificate');
      return { certPem, chainPem: [...this.#chainPem], trustBundle: [...this.#roots], notBefore, notAfter };
    } catch (err) {
      this.recordRefusal(err, { node, identity });
      throw err;
    }
  }

  /**
   * Counts and logs a refused or failed request. The HTTPS service calls it for refusals that
   * happen before `sign` (a bad token), so that all refusals are counted in one place.
   */
  recordRefusal(err: unknown, context: { node?: string; identity?: string; remote?: string }): void {
    const result = caResultFor(err);
    this.#counter?.inc({ result });
    const reason = err instanceof Error ? err.message : String(err);
    const code = isWeftError(err) ? err.code : undefined;
    if (result === 'error') this.#log.error({ ...context, result, code, err }, 'certificate request failed');
    else this.#log.warn({ ...context, result, code, reason }, 'certificate request refused');
  }

  /** A TLS server certificate for the CA's own HTTPS endpoint (not a workload identity). */
  issueServingCertificate(opts: { dnsNames: string[]; ipAddresses: string[]; lifetimeMs: number }): { keyPem: string; certPem: string; chainPem: string[]; notAfter: Date } {
    const { privateKey, publicKey } = generateEcKey();
    const now = this.#now();
    const notAfter = secondFloor(Math.min(now + opts.lifetimeMs, this.#issuerNotAfter));
    const certPem = buildCertificate({
      serial: randomSerial(),
      notBefore: secondFloor(now - BACKDATE_MS),
      notAfter,
      subject: { organization: 'weft', commonName: 'weft-ca' },
      publicKey,
      issuer: this.#issuer,
      signingKey: this.#issuer.key,
      isCa: false,
      dnsNames: opts.dnsNames,
      ipAddresses: opts.ipAddresses,
    });
    return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem, chainPem: [...this.#chainPem], notAfter };
  }
}

/**
 * Checks that the key matches the signing certificate, that it is a CA, and that it chains
 * through the intermediates to one of the roots; returns the chain to hand out with leaves.
 */
function validateMaterial(m: CaKeyMaterial): { key: KeyObject; chain: string[]; roots: string[]; notAfter: number } {
  let key: KeyObject;
  let cert: X509Certificate;
  let roots: X509Certificate[];
  let parents: X509Certificate[];
  try {
    key = createPrivateKey(m.keyPem);
    cert = new X509Certificate(m.certPem);
    roots = m.rootsPem.map((p) => new X509Certificate(p));
    parents = (m.intermediatesPem ?? []).map((p) => new X509Certificate(p));
  } catch (err) {
    throw new WeftError('WEFT_ERR_CA_LOAD', 'CA key or certificates are not valid PEM', { cause: err });
  }
  if (!cert.ca) throw new WeftError('WEFT_ERR_CA_LOAD', 'the CA certificate is not a CA (basicConstraints cA is false)');
  if (!cert.checkPrivateKey(key)) throw new WeftError('WEFT_ERR_CA_LOAD', 'the CA key does not match the CA certificate');
  if (roots.length === 0) throw new WeftError('WEFT_ERR_CA_LOAD', 'no root certificate given');
  // cert-chain.pem often repeats the signing cert and the root: keep only true intermediates.
  const isRoot = (c: X509Certificate): boolean => roots.some((r) => r.fingerprint256 === c.fingerprint256);
  const intermediates = parents.filter((p) => p.fingerprint256 !== cert.fingerprint256 && !isRoot(p));
  // Walk signing cert -> intermediates -> a root; bounded by the number of certificates.
  const rootPems = roots.map((r) => r.toString());
  const notAfter = Date.parse(cert.validTo);
  const chain: string[] = [];
  let current = cert;
  for (let i = 0; i <= intermediates.length; i++) {
    if (isRoot(current)) return { key, chain, roots: rootPems, notAfter };
    chain.push(current.toString());
    const c = current;
    if (roots.some((r) => c.checkIssued(r) && c.verify(r.publicKey))) return { key, chain, roots: rootPems, notAfter };
    const next = intermediates.find((p) => c.checkIssued(p) && c.verify(p.publicKey));
    if (next === undefined) break;
    current = next;
  }
  throw new WeftError('WEFT_ERR_CA_LOAD', 'the CA certificate does not chain to a root in root-cert.pem (through cert-chain.pem)');
}

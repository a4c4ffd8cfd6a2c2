/**
 * Workload certificates of the identities on this node: one key and certificate per identity,
 * shared by all its pods. A certificate is renewed at half its lifetime (with jitter, so a node
 * does not renew everything at once); while the CA is unreachable, renewal is retried with
 * capped exponential backoff and callers keep the cached certificate until it expires.
 */
import { createPrivateKey, generateKeyPair, X509Certificate, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createSecureContext, type SecureContext } from 'node:tls';
import { promisify } from 'node:util';
import { IDENTITY_RETRY_INITIAL_MS, IDENTITY_RETRY_MAX_MS, MAX_IDENTITIES, RENEW_AT_FRACTION, RENEW_JITTER_FRACTION } from '../config.js';
import { WeftError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { CaClient } from './ca-types.js';
import { MAX_TIMER_MS, systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from './clock.js';
import { uriSans } from './spiffe.js';
import type { TrustBundleSource } from './trust-bundle.js';
import { buildCsr } from './x509.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A workload's key and certificate, ready for TLS (client and server side). */
export interface WorkloadCertificate {
  identity: string;
  keyPem: string;
  certPem: string;
  /** Intermediates, leaf's issuer first (sent after the leaf). */
  chainPem: string[];
  /** Roots that peers' certificates must chain to. */
  trustBundle: string[];
  notBefore: Date;
  notAfter: Date;
  /** Hex serial number, as Node's X509Certificate reports it. */
  serial: string;
  /** TLS 1.3 context holding key, leaf + chain, and the trust bundle as CA store. */
  secureContext: SecureContext;
}

/**
 * Requests a new key pair + certificate for `identity` and checks what comes back. `extraRoots`
 * (the published trust bundle) are trusted besides the roots the CA answered with.
 */
export async function requestCertificate(ca: CaClient, identity: string, extraRoots: string[] = []): Promise<WorkloadCertificate> {
  return (await requestWithCaRoots(ca, identity, extraRoots)).cert;
}

/** requestCertificate, also returning the roots the CA answered with (kept apart from the published ones). */
async function requestWithCaRoots(ca: CaClient, identity: string, extraRoots: string[]): Promise<{ cert: WorkloadCertificate; caRoots: string[] }> {
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const signed = await ca.sign(buildCsr(privateKey, identity), identity);
  if (signed.trustBundle.length === 0) throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'CA returned an empty trust bundle');
  return { cert: assemble(identity, privateKey, signed.certPem, signed.chainPem, unionOfRoots(signed.trustBundle, extraRoots)), caRoots: signed.trustBundle };
}

/** Both sets, each certificate once (compared by its PEM text without surrounding space). */
function unionOfRoots(a: string[], b: string[]): string[] {
  const seen = new Map<string, string>();
  for (const pem of [...a, ...b]) seen.set(pem.trim(), pem);
  return [...seen.values()];
}

function assemble(identity: string, key: KeyObject, certPem: string, chainPem: string[], trustBundle: string[]): WorkloadCertificate {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'CA returned a certificate that does not parse', { cause: err });
  }
  // A CA that answers with someone else's key or identity is broken; never use such a cert.
  if (!x509.checkPrivateKey(key)) throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', `CA returned a certificate for another key (identity ${identity})`);
  const sans = uriSans(x509.subjectAltName);
  if (sans.length !== 1 || sans[0] !== identity) {
    throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', `CA returned a certificate for ${JSON.stringify(sans)} instead of ${identity}`);
  }
  if (trustBundle.length === 0) throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', 'CA returned an empty trust bundle');
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const secureContext = createSecureContext({
    key: keyPem,
    cert: certPem + chainPem.join(''),
    ca: trustBundle,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  });
  return {
    identity,
    keyPem,
    certPem,
    chainPem,
    trustBundle,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    serial: x509.serialNumber,
    secureContext,
  };
}

export interface IdentityManagerOptions {
  caClient: CaClient;
  clock?: Clock;
  timers?: Timers;
  logger?: Logger;
  /** Uniform [0, 1) source for jitter (injectable so tests are deterministic). */
  random?: () => number;
  /** Fraction of the lifetime after which a certificate is renewed (default 0.5). */
  renewAt?: number;
  /** Total width of the renewal jitter as a fraction of the lifetime (default 0.1: 45%..55%). */
  jitter?: number;
  /** First retry delay after a failed request (default agent/config.ts: 250 ms), doubled per failure ... */
  retryInitialMs?: number;
  /** ... up to this (default agent/config.ts: 5 s). */
  retryMaxMs?: number;
  /** Most identities kept (default 10 000; the oldest not wanted by setWanted go first, a wanted one never). */
  maxIdentities?: number;
  /**
   * The published trust bundle (the `weft-ca-root` ConfigMap as a file). Its roots are trusted
   * besides the CA's answer, and a change applies to every cached certificate at once (new
   * handshakes; no restart, no new certificate needed): how a root rotation reaches the agents.
   */
  trustBundle?: TrustBundleSource;
}

export interface IdentityStats {
  identities: number;
  issued: number;
  renewed: number;
  failures: number;
  certificates: {
    identity: string;
    serial: string | undefined;
    notBefore: Date | undefined;
    notAfter: Date | undefined;
    /** When the next request is due (renewal or retry); undefined while one is running. */
    nextAttempt: Date | undefined;
    consecutiveFailures: number;
  }[];
}

interface Entry {
  identity: string;
  cert: WorkloadCertificate | undefined;
  inflight: Promise<WorkloadCertificate> | undefined;
  timer: TimerHandle | undefined;
  dueAt: number | undefined;
  failures: number;
  lastError: unknown;
  dropped: boolean;
  /** Roots of the CA's last answer for this identity (the published bundle is added to them). */
  caRoots?: string[];
}

export interface IdentityManagerEvents {
  /** A certificate replaced an earlier one for the identity. */
  rotated: [identity: string, cert: WorkloadCertificate];
  /** A certificate arrived for an identity that had none (first issue, or after expiry). */
  issued: [identity: string, cert: WorkloadCertificate];
  /** A background request (renewal, retry, prefetch) failed; a retry is scheduled. */
  renewalFailed: [identity: string, err: Error];
}

export class IdentityManager extends EventEmitter<IdentityManagerEvents> {
  readonly #ca: CaClient;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #renewAt: number;
  readonly #jitter: number;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  /** Insertion-ordered; bounded by #maxIdentities, never by evicting a wanted identity. */
  readonly #entries = new Map<string, Entry>();
  readonly #maxIdentities: number;
  /** The identities of this node's pods (setWanted): their entries are never evicted. */
  #wanted = new Set<string>();
  readonly #published: TrustBundleSource | undefined;
  readonly #onBundle = (): void => this.#rebundle();
  #bundle: string[] = [];
  #issued = 0;
  #renewed = 0;
  #failures = 0;
  #closed = false;

  constructor(opts: IdentityManagerOptions) {
    super();
    // Every connection waiting for a certificate (whenAvailable) listens for it; many may wait.
    this.setMaxListeners(0);
    this.#ca = opts.caClient;
    this.#clock = opts.clock ?? systemClock;
    this.#timers = opts.timers ?? systemTimers;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'identity' });
    this.#random = opts.random ?? Math.random;
    this.#renewAt = opts.renewAt ?? RENEW_AT_FRACTION;
    this.#jitter = opts.jitter ?? RENEW_JITTER_FRACTION;
    // Capped at seconds: after a CA outage every agent is back within the cap, not a minute later.
    this.#retryInitialMs = opts.retryInitialMs ?? IDENTITY_RETRY_INITIAL_MS;
    this.#retryMaxMs = opts.retryMaxMs ?? IDENTITY_RETRY_MAX_MS;
    this.#maxIdentities = opts.maxIdentities ?? MAX_IDENTITIES;
    this.#published = opts.trustBundle;
    this.#published?.on('changed', this.#onBundle);
  }

  /**
   * The certificate for `identity`: the cached one while it is unexpired, else a new one from
   * the CA (concurrent callers share one request). Rejects with WEFT_ERR_IDENTITY_UNAVAILABLE.
   */
  get(identity: string): Promise<WorkloadCertificate> {
    const entry = this.#entry(identity);
    const cert = entry.cert;
    const now = this.#clock.now();
    if (cert !== undefined && now < cert.notAfter.getTime()) return Promise.resolve(cert);
    // While a retry is pending after a failure, fail fast instead of sending the CA one request
    // per new connection.
    const waiting = entry.inflight === undefined && entry.failures > 0 && entry.dueAt !== undefined && now < entry.dueAt;
    return (waiting ? Promise.reject(entry.lastError) : this.#request(entry)).catch((err: unknown) => {
      throw new WeftError('WEFT_ERR_IDENTITY_UNAVAILABLE', `no certificate for ${identity}: ${(err as Error).message}`, { cause: err });
    });
  }

  /**
   * The certificate for `identity`, waiting up to `timeoutMs` for one while the CA cannot be
   * reached (the scheduled retries keep going; waiting adds no requests). Outbound connections
   * of a pod without its certificate wait here, bounded, and are refused after: never plaintext.
   */
  whenAvailable(identity: string, timeoutMs: number): Promise<WorkloadCertificate> {
    const cached = this.current(identity);
    if (cached !== undefined) return Promise.resolve(cached);
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (err: Error | undefined, cert?: WorkloadCertificate): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.off('issued', onCert);
        this.off('rotated', onCert);
        if (cert !== undefined) resolve(cert);
        else reject(err);
      };
      const onCert = (id: string, cert: WorkloadCertificate): void => {
        if (id === identity) done(undefined, cert);
      };
      const timer = setTimeout(() => {
        const last = this.#entries.get(identity)?.lastError;
        done(new WeftError('WEFT_ERR_IDENTITY_UNAVAILABLE', `no certificate for ${identity} within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`));
      }, timeoutMs);
      timer.unref();
      this.on('issued', onCert);
      this.on('rotated', onCert);
      // Nothing scheduled (first ask, or the retry timer fired and failed fast): ask now.
      const entry = this.#entry(identity);
      if (entry.inflight === undefined && entry.timer === undefined) this.#background(entry);
    });
  }

  /** The cached unexpired certificate, without asking the CA (for per-connection callbacks). */
  current(identity: string): WorkloadCertificate | undefined {
    const cert = this.#entries.get(identity)?.cert;
    return cert !== undefined && this.#clock.now() < cert.notAfter.getTime() ? cert : undefined;
  }

  /**
   * The identities that pods on this node have now. Others are forgotten (their timers
   * stopped); new ones are fetched in the background so the first connection finds them ready.
   */
  setWanted(identities: Iterable<string>): void {
    const wanted = new Set(identities);
    this.#wanted = wanted;
    for (const [identity, entry] of [...this.#entries]) {
      if (!wanted.has(identity)) this.#remove(entry);
    }
    for (const identity of wanted) {
      const entry = this.#entry(identity);
      if (entry.cert === undefined && entry.inflight === undefined && entry.timer === undefined) this.#background(entry);
    }
  }

  /** Roots from the CA's latest answer (asks the CA when none has come yet). */
  async trustBundle(): Promise<string[]> {
    if (this.#bundle.length === 0) this.#bundle = await this.#ca.bundle();
    return [...this.#bundle];
  }

  stats(): IdentityStats {
    const certificates: IdentityStats['certificates'] = [];
    for (const e of this.#entries.values()) {
      certificates.push({
        identity: e.identity,
        serial: e.cert?.serial,
        notBefore: e.cert?.notBefore,
        notAfter: e.cert?.notAfter,
        nextAttempt: e.dueAt === undefined ? undefined : new Date(e.dueAt),
        consecutiveFailures: e.failures,
      });
    }
    certificates.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
    return { identities: this.#entries.size, issued: this.#issued, renewed: this.#renewed, failures: this.#failures, certificates };
  }

  /** Stops all timers; cached certificates stay readable. */
  close(): void {
    this.#closed = true;
    this.#published?.off('changed', this.#onBundle);
    for (const e of this.#entries.values()) this.#cancel(e);
  }

  #entry(identity: string): Entry {
    let entry = this.#entries.get(identity);
    if (entry === undefined) {
      if (this.#entries.size >= this.#maxIdentities) this.#evictOneUnwanted();
      entry = { identity, cert: undefined, inflight: undefined, timer: undefined, dueAt: undefined, failures: 0, lastError: undefined, dropped: false };
      this.#entries.set(identity, entry);
    }
    return entry;
  }

  #request(entry: Entry): Promise<WorkloadCertificate> {
    if (entry.inflight !== undefined) return entry.inflight;
    this.#cancel(entry);
    const p = requestWithCaRoots(this.#ca, entry.identity, this.#published?.current() ?? []).then(
      ({ cert, caRoots }) => {
        entry.inflight = undefined;
        entry.caRoots = caRoots;
        if (entry.dropped) return cert;
        const previous = entry.cert;
        entry.cert = cert;
        entry.failures = 0;
        entry.lastError = undefined;
        this.#bundle = cert.trustBundle;
        this.#issued++;
        this.#scheduleRenewal(entry, cert);
        this.#log.info({ identity: entry.identity, serial: cert.serial, notAfter: cert.notAfter }, previous === undefined ? 'certificate issued' : 'certificate renewed');
        if (previous !== undefined) {
          this.#renewed++;
          this.emit('rotated', entry.identity, cert);
        } else {
          this.emit('issued', entry.identity, cert);
        }
        return cert;
      },
      (err: unknown) => {
        entry.inflight = undefined;
        if (!entry.dropped) {
          entry.failures++;
          entry.lastError = err;
          this.#failures++;
          this.#scheduleRetry(entry);
        }
        throw err;
      },
    );
    entry.inflight = p;
    return p;
  }

  /**
   * The published bundle changed: every cached certificate gets a new context with it (a new
   * object, which the HBONE server and pool pick up on their next handshake).
   */
  #rebundle(): void {
    const roots = this.#published?.current() ?? [];
    for (const entry of this.#entries.values()) {
      const c = entry.cert;
      if (c === undefined) continue;
      // The CA's roots from the last answer stay; the published ones are replaced.
      const fromCa = entry.caRoots ?? c.trustBundle;
      try {
        entry.cert = assemble(c.identity, createPrivateKey(c.keyPem), c.certPem, c.chainPem, unionOfRoots(fromCa, roots));
      } catch (err) {
        this.#log.error({ identity: c.identity, err }, 'applying the new trust bundle failed; keeping the previous one');
      }
    }
    this.#bundle = unionOfRoots(this.#bundle, roots);
    this.#log.info({ roots: roots.length, identities: this.#entries.size }, 'trust bundle applied to cached certificates');
  }

  /** A request nobody awaits: failures are logged and announced, the retry is already scheduled. */
  #background(entry: Entry): void {
    this.#request(entry).catch((err: unknown) => {
      if (entry.dropped) return;
      const cached = entry.cert;
      this.#log.warn(
        { identity: entry.identity, failures: entry.failures, retryAt: entry.dueAt === undefined ? undefined : new Date(entry.dueAt), cachedUntil: cached?.notAfter, err },
        'certificate request failed; will retry',
      );
      this.emit('renewalFailed', entry.identity, err instanceof Error ? err : new Error(String(err)));
    });
  }

  #scheduleRenewal(entry: Entry, cert: WorkloadCertificate): void {
    // CAs backdate notBefore (ours by a minute) against clock skew; the useful life starts when
    // the certificate arrived, or short lifetimes would renew at once, over and over.
    const from = Math.max(cert.notBefore.getTime(), this.#clock.now());
    const lifetime = cert.notAfter.getTime() - from;
    const fraction = this.#renewAt + (this.#random() - 0.5) * this.#jitter;
    this.#arm(entry, from + Math.floor(lifetime * fraction));
  }

  #scheduleRetry(entry: Entry): void {
    const base = Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** Math.min(30, entry.failures - 1));
    // Up to 20% less, so agents that lost the CA together do not come back in lockstep.
    this.#arm(entry, this.#clock.now() + Math.floor(base * (1 - 0.2 * this.#random())));
  }

  #arm(entry: Entry, at: number): void {
    if (this.#closed || entry.dropped) return;
    this.#cancel(entry);
    entry.dueAt = at;
    const delay = Math.max(0, Math.min(MAX_TIMER_MS, at - this.#clock.now()));
    entry.timer = this.#timers.setTimeout(() => {
      entry.timer = undefined;
      // Delays beyond setTimeout's range are re-armed until the real due time.
      if (this.#clock.now() < at) this.#arm(entry, at);
      else this.#background(entry);
    }, delay);
  }

  #cancel(entry: Entry): void {
    if (entry.timer !== undefined) this.#timers.clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.dueAt = undefined;
  }

  /** Makes room: the oldest entry no pod of this node wants. With only wanted ones, none goes. */
  #evictOneUnwanted(): void {
    for (const entry of this.#entries.values()) {
      if (!this.#wanted.has(entry.identity)) {
        this.#remove(entry);
        return;
      }
    }
  }

  #remove(entry: Entry): void {
    this.#entries.delete(entry.identity);
    this.#drop(entry);
  }

  #drop(entry: Entry): void {
    entry.dropped = true;
    this.#cancel(entry);
    this.#log.debug({ identity: entry.identity }, 'identity no longer on this node');
  }
}

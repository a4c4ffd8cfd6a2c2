/**
 * The trust bundle an agent verifies peers (and the CA) with, read from a PEM file that the
 * kubelet projects from the `weft-ca-root` ConfigMap. The kubelet replaces the file atomically
 * (a `..data` symlink swap in the volume's directory) some time after the ConfigMap changed; the
 * agent notices through a watch on that directory, and a slow poll for filesystems that do not
 * report changes. A file that is missing, empty or not PEM keeps the last good bundle in force:
 * a broken ConfigMap never leaves an agent trusting nothing, or anything.
 */
import { TRUST_BUNDLE_POLL_MS } from '../config.js';
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WeftError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { splitPemCertificates } from './der.js';

/** What the identity manager needs from a bundle: the current roots, and news of a change. */
export interface TrustBundleSource {
  current(): string[];
  on(event: 'changed', listener: (roots: string[]) => void): unknown;
  off(event: 'changed', listener: (roots: string[]) => void): unknown;
}

/** PEM text -> roots; throws WEFT_ERR_TRUST_BUNDLE unless it holds at least one CA certificate and nothing else. */
export function parseTrustBundle(text: string, where: string): string[] {
  const pems = splitPemCertificates(text);
  if (pems.length === 0) throw new WeftError('WEFT_ERR_TRUST_BUNDLE', `${where} holds no PEM certificate`);
  for (const [i, pem] of pems.entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (err) {
      throw new WeftError('WEFT_ERR_TRUST_BUNDLE', `${where}: certificate ${i + 1} does not parse`, { cause: err });
    }
    if (!cert.ca) throw new WeftError('WEFT_ERR_TRUST_BUNDLE', `${where}: certificate ${i + 1} (subject ${JSON.stringify(cert.subject ?? '')}, SAN ${cert.subjectAltName ?? 'none'}) is not a CA`);
  }
  return pems;
}

export interface TrustBundleFileOptions {
  path: string;
  logger?: Logger;
  /** Fallback poll interval (default 10 s). */
  pollMs?: number;
}

export class TrustBundleFile extends EventEmitter<{ changed: [roots: string[]] }> implements TrustBundleSource {
  readonly #opts: TrustBundleFileOptions;
  readonly #log: Logger;
  #text: string;
  #roots: string[];
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #reading = false;
  #again = false;

  /** Reads the file now: a bundle that is unusable at start is a configuration error. */
  constructor(opts: TrustBundleFileOptions) {
    super();
    this.#opts = opts;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'trust-bundle' });
    try {
      this.#text = readFileSync(opts.path, 'utf8');
    } catch (err) {
      throw new WeftError('WEFT_ERR_TRUST_BUNDLE', `cannot read the trust bundle ${opts.path}: ${(err as Error).message}`, { cause: err });
    }
    this.#roots = parseTrustBundle(this.#text, opts.path);
  }

  current(): string[] {
    return [...this.#roots];
  }

  /** Starts noticing changes. */
  start(): this {
    try {
      this.#watcher = watch(dirname(this.#opts.path), { persistent: false }, () => this.check());
      this.#watcher.on('error', (err) => this.#log.warn({ err }, 'watching the trust bundle directory failed; polling only'));
    } catch (err) {
      this.#log.warn({ err }, 'cannot watch the trust bundle directory; polling only');
    }
    this.#poll = setInterval(() => this.check(), this.#opts.pollMs ?? TRUST_BUNDLE_POLL_MS);
    this.#poll.unref();
    return this;
  }

  stop(): void {
    this.#watcher?.close();
    clearInterval(this.#poll);
  }

  /** Re-reads the file; emits `changed` when its roots differ. Resolves when done. */
  async check(): Promise<void> {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    try {
      do {
        this.#again = false;
        await this.#read();
      } while (this.#again);
    } finally {
      this.#reading = false;
    }
  }

  async #read(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#opts.path, 'utf8');
    } catch (err) {
      this.#log.warn({ code: 'WEFT_ERR_TRUST_BUNDLE', path: this.#opts.path, err }, 'trust bundle unreadable; keeping the last good one');
      return;
    }
    if (text === this.#text) return;
    let roots: string[];
    try {
      roots = parseTrustBundle(text, this.#opts.path);
    } catch (err) {
      this.#log.warn({ code: 'WEFT_ERR_TRUST_BUNDLE', reason: (err as Error).message }, 'trust bundle changed to something unusable; keeping the last good one');
      return;
    }
    this.#text = text;
    this.#roots = roots;
    this.#log.info({ path: this.#opts.path, roots: roots.length }, 'trust bundle changed');
    this.emit('changed', [...roots]);
  }
}

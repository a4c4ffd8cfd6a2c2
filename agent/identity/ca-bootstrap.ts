/**
 * How the CA gets its key on Kubernetes, as istiod does: it reads the `weft-ca-keys` Secret of
 * its namespace; an operator may have put a root or an intermediate there (Weft/Istio cacerts
 * layout or cert-manager's tls.* layout, ca-keys.ts); when the Secret is absent the CA makes a
 * self-signed root and creates the Secret. Two replicas starting together both try to create
 * it: the API server lets exactly one create win, the other gets 409 AlreadyExists and reads
 * the winner's, so both sign with the same key.
 *
 * The roots are published as the `weft-ca-root` ConfigMap (root-cert.pem) that every agent
 * mounts; the CA re-reads the Secret and re-publishes on an interval, so a deleted or edited
 * ConfigMap is put back and a root added to the Secret (rotation) reaches the agents.
 *
 * The Kubernetes calls go through `CaKubeApi` (ca-kube-api.ts implements it on
 * @kubernetes/client-node), so the logic is tested without an API server.
 */
import { createHash } from 'node:crypto';
import { WeftError, isWeftError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { CA_FILES, CertificateAuthority, type CaKeyMaterial } from './ca.js';
import { caKeyMaterialFromSecret, caKeyMaterialToSecret, caKeysLayout } from './ca-keys.js';
import { CA_REPUBLISH_MS as DEFAULT_REPUBLISH_MS, DEFAULT_TRUST_DOMAIN } from '../config.js';

export const DEFAULT_CA_KEYS_SECRET = 'weft-ca-keys';
export const DEFAULT_CA_ROOT_CONFIGMAP = 'weft-ca-root';
/** Key of the trust bundle in the ConfigMap (and the file agents read it from). */
export const ROOT_BUNDLE_KEY = CA_FILES.roots;
/** Marks what the CA created itself, so operators can tell it from what they provided. */
export const MANAGED_BY_LABEL = { 'app.kubernetes.io/managed-by': 'weft-ca' } as const;

/** A Secret or ConfigMap as far as the CA cares: decoded data and the version it was read at. */
export interface KubeDataObject {
  data: Record<string, string>;
  labels: Record<string, string>;
  resourceVersion: string;
}

/**
 * The CA's Kubernetes calls, namespaced. Reads return undefined for 404; creates return
 * 'exists' for 409 AlreadyExists; replace returns 'conflict' for a stale resourceVersion (409)
 * and 'gone' for 404. Anything else rejects (403 from RBAC, the API server away).
 */
export interface CaKubeApi {
  readSecret(namespace: string, name: string): Promise<KubeDataObject | undefined>;
  createSecret(namespace: string, name: string, data: Record<string, string>, labels: Record<string, string>): Promise<'created' | 'exists'>;
  readConfigMap(namespace: string, name: string): Promise<KubeDataObject | undefined>;
  createConfigMap(namespace: string, name: string, data: Record<string, string>, labels: Record<string, string>): Promise<'created' | 'exists'>;
  replaceConfigMap(namespace: string, name: string, data: Record<string, string>, labels: Record<string, string>, resourceVersion: string): Promise<'replaced' | 'conflict' | 'gone'>;
}

export type CaKeysOrigin = 'created' | 'self-signed' | 'operator';

export interface CaBootstrapOptions {
  api: CaKubeApi;
  namespace: string;
  secretName?: string;
  trustDomain?: string;
  logger?: Logger;
  now?: () => number;
}

function bootstrapError(what: string, err: unknown): WeftError {
  if (isWeftError(err)) return err;
  return new WeftError(
    'WEFT_ERR_CA_BOOTSTRAP',
    `${what} failed: ${(err as Error)?.message ?? String(err)} (is the API server reachable; does the CA's Role in its namespace allow it? see daemonset/rbac.yaml)`,
    { cause: err },
  );
}

/**
 * The CA's key material from the Secret, creating the Secret with a new self-signed root when it
 * is absent. `origin` says which: 'created' (this call made it), 'self-signed' (a CA made it
 * earlier, perhaps the other replica a moment ago), 'operator' (provided by the operator).
 */
export async function bootstrapCaKeys(opts: CaBootstrapOptions): Promise<{ material: CaKeyMaterial; origin: CaKeysOrigin }> {
  const name = opts.secretName ?? DEFAULT_CA_KEYS_SECRET;
  const log = (opts.logger ?? silentLogger).child({ component: 'ca-bootstrap' });
  // Two rounds are enough: a create that loses the race is followed by a read of the winner's.
  for (let round = 0; round < 3; round++) {
    let existing: KubeDataObject | undefined;
    try {
      existing = await opts.api.readSecret(opts.namespace, name);
    } catch (err) {
      throw bootstrapError(`reading Secret ${opts.namespace}/${name}`, err);
    }
    if (existing !== undefined) {
      const material = caKeyMaterialFromSecret(existing.data, `${opts.namespace}/${name}`);
      const origin: CaKeysOrigin = existing.labels['app.kubernetes.io/managed-by'] === MANAGED_BY_LABEL['app.kubernetes.io/managed-by'] ? 'self-signed' : 'operator';
      log.info({ secret: `${opts.namespace}/${name}`, origin, layout: caKeysLayout(existing.data) }, 'CA key material read from Secret');
      return { material, origin };
    }
    const material = CertificateAuthority.generateRoot(opts.trustDomain ?? DEFAULT_TRUST_DOMAIN, opts.now);
    let result: 'created' | 'exists';
    try {
      result = await opts.api.createSecret(opts.namespace, name, caKeyMaterialToSecret(material), { ...MANAGED_BY_LABEL });
    } catch (err) {
      throw bootstrapError(`creating Secret ${opts.namespace}/${name}`, err);
    }
    if (result === 'created') {
      log.info({ secret: `${opts.namespace}/${name}`, root: fingerprint(material.certPem) }, 'no CA Secret: generated a self-signed root and created the Secret');
      return { material, origin: 'created' };
    }
    log.info({ secret: `${opts.namespace}/${name}` }, 'another CA replica created the Secret first: using its key');
  }
  throw new WeftError('WEFT_ERR_CA_BOOTSTRAP', `Secret ${opts.namespace}/${name} exists when created but is absent when read (is something deleting it?)`);
}

export interface TrustBundlePublisherOptions {
  api: CaKubeApi;
  namespace: string;
  secretName?: string;
  configMapName?: string;
  logger?: Logger;
  /** How often the Secret is re-read and the ConfigMap put right (default 30 s). */
  intervalMs?: number;
  /** The certificate this CA signs with: a Secret with another one is logged (restart to use it). */
  signingCertPem?: string;
}

/**
 * Publishes the roots of the CA Secret as the trust-bundle ConfigMap, and keeps doing so. The
 * roots are read from the Secret each round (not from the running CA), so that two replicas
 * of different ages publish the same bundle and an operator's edit of root-cert.pem (adding a
 * new root before a rotation, removing the old one after) reaches the agents without a restart.
 */
export class TrustBundlePublisher {
  readonly #opts: TrustBundlePublisherOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #published = '';
  #warnedKeyChange = false;
  /** Whether the Secret's signing certificate differs from the one this CA runs with (rotation step 2 pending a restart). */
  signingKeyChanged = false;

  constructor(opts: TrustBundlePublisherOptions) {
    this.#opts = opts;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'trust-bundle-publisher' });
  }

  /** The bundle last published (PEM roots joined), undefined before the first round. */
  get bundle(): string | undefined {
    return this.#published === '' ? undefined : this.#published;
  }

  /** Publishes once (rejects on failure: the CA should not serve before agents can trust it), then on the interval. */
  async start(): Promise<void> {
    await this.reconcile();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /**
   * One round: the Secret's roots -> the ConfigMap. Returns what was done. A Secret that no
   * longer parses leaves the published bundle as it is (never an empty or broken bundle).
   */
  async reconcile(): Promise<'created' | 'updated' | 'unchanged'> {
    const { api, namespace } = this.#opts;
    const secretName = this.#opts.secretName ?? DEFAULT_CA_KEYS_SECRET;
    const cmName = this.#opts.configMapName ?? DEFAULT_CA_ROOT_CONFIGMAP;
    let secret: KubeDataObject | undefined;
    try {
      secret = await api.readSecret(namespace, secretName);
    } catch (err) {
      throw bootstrapError(`reading Secret ${namespace}/${secretName}`, err);
    }
    if (secret === undefined) throw new WeftError('WEFT_ERR_CA_BOOTSTRAP', `Secret ${namespace}/${secretName} is gone; the published bundle stays as it is (restart the CA to bootstrap again)`);
    const material = caKeyMaterialFromSecret(secret.data, `${namespace}/${secretName}`);
    const roots = material.rootsPem;
    const running = this.#opts.signingCertPem;
    this.signingKeyChanged = running !== undefined && material.certPem.trim() !== running.trim();
    if (this.signingKeyChanged && !this.#warnedKeyChange) {
      this.#log.warn({ secret: `${namespace}/${secretName}` }, 'the Secret holds another signing key than this CA runs with: restart the CA to sign with it (kubectl rollout restart deploy/weft-ca)');
    }
    this.#warnedKeyChange = this.signingKeyChanged;
    if (roots.length === 0) throw new WeftError('WEFT_ERR_CA_LOAD', `Secret ${namespace}/${secretName} holds no root certificate; the published bundle stays as it is`);
    const bundle = roots.join('');
    const data = { [ROOT_BUNDLE_KEY]: bundle };
    for (let attempt = 0; attempt < 5; attempt++) {
      let current: KubeDataObject | undefined;
      try {
        current = await api.readConfigMap(namespace, cmName);
        if (current === undefined) {
          if ((await api.createConfigMap(namespace, cmName, data, { ...MANAGED_BY_LABEL })) === 'created') return this.#done('created', bundle, roots.length);
          continue;
        }
        if (current.data[ROOT_BUNDLE_KEY] === bundle) return this.#done('unchanged', bundle, roots.length);
        const r = await api.replaceConfigMap(namespace, cmName, data, { ...current.labels, ...MANAGED_BY_LABEL }, current.resourceVersion);
        if (r === 'replaced') return this.#done('updated', bundle, roots.length);
        // 'conflict' (the other replica wrote in between) or 'gone': read again.
      } catch (err) {
        throw bootstrapError(`publishing ConfigMap ${namespace}/${cmName}`, err);
      }
    }
    throw new WeftError('WEFT_ERR_CA_BOOTSTRAP', `ConfigMap ${namespace}/${cmName} kept changing under the CA (5 conflicts in a row)`);
  }

  #done(result: 'created' | 'updated' | 'unchanged', bundle: string, roots: number): 'created' | 'updated' | 'unchanged' {
    if (result !== 'unchanged' || this.#published !== bundle) {
      this.#log.info({ result, roots, bundle: fingerprint(bundle) }, 'trust bundle published');
    }
    this.#published = bundle;
    return result;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.reconcile().then(
        () => this.#schedule(),
        (err: unknown) => {
          this.#log.warn({ err, code: isWeftError(err) ? err.code : undefined }, 'publishing the trust bundle failed; retrying');
          this.#schedule();
        },
      );
    }, this.#opts.intervalMs ?? DEFAULT_REPUBLISH_MS);
    this.#timer.unref();
  }
}

function fingerprint(pem: string): string {
  return createHash('sha256').update(pem).digest('hex').slice(0, 16);
}

/**
 * The trust bundle in every namespace, as istiod publishes `istio-ca-root-cert`: a waypoint or
 * an ingress gateway runs in its users' namespace and mounts the `weft-ca-root` ConfigMap of
 * that namespace (what `weft waypoint generate` prints), so the CA writes the same ConfigMap
 * (root-cert.pem) into each namespace: at once when a namespace appears (a Namespace watch), when
 * the bundle changes (rotation: the CA's own namespace's publisher read a new root), and in a
 * slow full pass that puts back what was deleted or edited. The `kube-*` namespaces are left
 * out (nothing of the mesh runs there), as is one that is terminating.
 *
 * RBAC (daemonset/rbac.yaml): namespaces list + watch; configmaps get/update of `weft-ca-root`
 * in every namespace, create (RBAC cannot limit create by name). Writes never block signing.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../log.js';
import { Reflector } from '../discovery/reflector.js';
import type { CaKubeApi } from './ca-bootstrap.js';
import { DEFAULT_CA_ROOT_CONFIGMAP, MANAGED_BY_LABEL, ROOT_BUNDLE_KEY } from './ca-bootstrap.js';
import { isWeftError } from '../errors.js';

/** How often every namespace's ConfigMap is read back and put right (deleted, edited). */
export const CA_ROOT_FULL_PASS_MS = 5 * 60_000;

/** A namespace whose write failed waits this long before the next try. */
const RETRY_FAILED_MS = 30_000;

export interface NamespaceBundleOptions {
  api: CaKubeApi;
  kubeConfig: KubeConfig;
  /** The bundle to publish now (PEM roots joined), or undefined before the first one. */
  bundle: () => string | undefined;
  configMapName?: string;
  logger?: Logger;
  /** Namespaces not written (the CA's own: its TrustBundlePublisher owns that one). */
  skip?: readonly string[];
  fullPassMs?: number;
  /** How often the bundle is compared with what was written (default 1 s; cheap: no request). */
  checkMs?: number;
}

interface NamespaceFact {
  name: string;
  terminating: boolean;
}

/** Writes `weft-ca-root` into `namespace` when it differs; 'conflict' is read again (5 times). */
export async function publishBundleConfigMap(api: CaKubeApi, namespace: string, name: string, bundle: string): Promise<'created' | 'updated' | 'unchanged'> {
  const data = { [ROOT_BUNDLE_KEY]: bundle };
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await api.readConfigMap(namespace, name);
    if (current === undefined) {
      if ((await api.createConfigMap(namespace, name, data, { ...MANAGED_BY_LABEL })) === 'created') return 'created';
      continue;
    }
    if (current.data[ROOT_BUNDLE_KEY] === bundle) return 'unchanged';
    if ((await api.replaceConfigMap(namespace, name, data, { ...current.labels, ...MANAGED_BY_LABEL }, current.resourceVersion)) === 'replaced') return 'updated';
  }
  throw new Error(`ConfigMap ${namespace}/${name} kept changing under the CA (5 conflicts in a row)`);
}

export class NamespaceBundlePublisher {
  readonly #o: NamespaceBundleOptions;
  readonly #log: Logger;
  readonly #reflector: Reflector<NamespaceFact>;
  readonly #namespaces = new Map<string, NamespaceFact>();
  /** What was last written (or found) per namespace. */
  readonly #written = new Map<string, string>();
  readonly #dirty = new Set<string>();
  /** A namespace whose write failed is tried again after this time (epoch ms), not every check. */
  readonly #retryAt = new Map<string, number>();
  #running = false;
  #stopped = false;
  #timers: NodeJS.Timeout[] = [];

  constructor(o: NamespaceBundleOptions) {
    this.#o = o;
    this.#log = (o.logger ?? silentLogger).child({ component: 'ca-root-namespaces' });
    this.#reflector = new Reflector<NamespaceFact>({
      kubeConfig: o.kubeConfig,
      kind: 'Namespace',
      path: '/api/v1/namespaces',
      logger: this.#log,
      convert: (raw) => {
        const md = (raw as { metadata?: { name?: unknown; deletionTimestamp?: unknown } } | null)?.metadata;
        if (typeof md?.name !== 'string') return undefined;
        return { key: md.name, value: { name: md.name, terminating: md.deletionTimestamp !== undefined && md.deletionTimestamp !== null } };
      },
      handler: {
        upsert: (key, value) => {
          this.#namespaces.set(key, value);
          if (!this.#written.has(key)) this.#dirty.add(key);
        },
        remove: (key) => {
          this.#namespaces.delete(key);
          this.#retryAt.delete(key);
          this.#written.delete(key);
          this.#dirty.delete(key);
        },
        flush: () => this.#kick(),
        refused: () => undefined,
      },
    });
  }

  start(): void {
    this.#reflector.start();
    this.#timers.push(setInterval(() => this.#checkBundle(), this.#o.checkMs ?? 1000));
    this.#timers.push(
      setInterval(() => {
        for (const ns of this.#namespaces.keys()) this.#dirty.add(ns);
        this.#written.clear();
        this.#kick();
      }, this.#o.fullPassMs ?? CA_ROOT_FULL_PASS_MS),
    );
    for (const t of this.#timers) t.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    await this.#reflector.stop();
  }

  /** Namespaces whose ConfigMap holds the current bundle (for tests and logs). */
  published(): string[] {
    const bundle = this.#o.bundle();
    return [...this.#written].filter(([, b]) => b === bundle).map(([ns]) => ns).sort();
  }

  #checkBundle(): void {
    const bundle = this.#o.bundle();
    if (bundle === undefined) return;
    let changed = false;
    const now = Date.now();
    for (const ns of this.#namespaces.keys()) {
      if ((this.#retryAt.get(ns) ?? 0) > now) continue;
      if (this.#written.get(ns) !== bundle && !this.#dirty.has(ns)) {
        this.#dirty.add(ns);
        changed = true;
      }
    }
    if (changed) this.#kick();
  }

  #wanted(ns: NamespaceFact | undefined): boolean {
    if (ns === undefined || ns.terminating) return false;
    if (ns.name.startsWith('kube-')) return false;
    return !(this.#o.skip ?? []).includes(ns.name);
  }

  /** Works through the dirty namespaces one at a time (one request in flight: no burst on the API). */
  #kick(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void (async () => {
      try {
        for (;;) {
          const bundle = this.#o.bundle();
          const next = this.#dirty.values().next();
          if (next.done || bundle === undefined || this.#stopped) return;
          const ns = next.value;
          this.#dirty.delete(ns);
          if (!this.#wanted(this.#namespaces.get(ns))) continue;
          const name = this.#o.configMapName ?? DEFAULT_CA_ROOT_CONFIGMAP;
          try {
            const result = await publishBundleConfigMap(this.#o.api, ns, name, bundle);
            this.#written.set(ns, bundle);
            this.#retryAt.delete(ns);
            if (result !== 'unchanged') this.#log.info({ namespace: ns, configMap: name, result }, 'trust bundle published in namespace');
          } catch (err) {
            // Left for the next full pass or bundle check (a namespace being deleted answers 403/404).
            this.#log.warn({ namespace: ns, code: isWeftError(err) ? err.code : 'WEFT_ERR_CA_BOOTSTRAP', err: (err as Error).message }, 'publishing the trust bundle in a namespace failed; retried later');
            this.#written.set(ns, '');
            this.#retryAt.set(ns, Date.now() + RETRY_FAILED_MS);
          }
        }
      } finally {
        this.#running = false;
      }
    })();
  }
}

/**
 * Discovery from a Kubernetes API server: one informer (list + watch, resourceVersion, re-list
 * on 410 Gone, all from @kubernetes/client-node) per kind — Namespaces, Pods, Services, and
 * Weft's AuthorizationPolicies and PeerAuthentications — feeding the same model the local
 * source builds. While the API server is unreachable the last model stays in force; the
 * informer that failed is restarted with capped exponential backoff until it succeeds.
 * Endpoints are computed from selectors over ready pods (as for the local source), so
 * EndpointSlices are not watched.
 */
import { EventEmitter } from 'node:events';
import { CoreV1Api, CustomObjectsApi, KubeConfig, makeInformer, type Informer, type KubernetesObject, type KubernetesListObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import type { ManifestObject, MeshModel } from './types.js';
import { buildModel, modelFingerprint } from './model.js';
import { POLICY_GROUP, POLICY_VERSION } from '../../policy/schema.js';

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  trustDomain?: string;
  /** Delay before restarting a failed informer (attempt 1, 2, ...); default 0.5 s doubling to 30 s. */
  reconnectDelayMs?: (attempt: number) => number;
  /** Changes arriving within this window give one model update (default 50 ms). */
  debounceMs?: number;
}

interface Watched {
  kind: string;
  apiVersion: string;
  path: string;
  informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  synced: boolean;
}

/** Kubernetes loads a kubeconfig file, or the in-cluster service account when `path` is undefined. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}

export class KubernetesSource extends EventEmitter {
  readonly #options: KubernetesSourceOptions;
  readonly #log: Logger;
  readonly #watched: Watched[] = [];
  #model: MeshModel;
  #fingerprint = '';
  #generation = 0;
  #debounce: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: KubernetesSourceOptions) {
    super();
    this.#options = options;
    this.#log = options.logger;
    this.#model = buildModel([], { generation: 0, ...(options.trustDomain ? { trustDomain: options.trustDomain } : {}) });
    const kc = options.kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const list = <T>(fn: () => Promise<T>) => fn as unknown as () => Promise<KubernetesListObject<KubernetesObject>>;
    const crd = (plural: string) => list(() => custom.listClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural }));
    this.#add('Namespace', 'v1', '/api/v1/namespaces', list(() => core.listNamespace()));
    this.#add('Pod', 'v1', '/api/v1/pods', list(() => core.listPodForAllNamespaces()));
    this.#add('Service', 'v1', '/api/v1/services', list(() => core.listServiceForAllNamespaces()));
    this.#add('AuthorizationPolicy', `${POLICY_GROUP}/${POLICY_VERSION}`, `/apis/${POLICY_GROUP}/${POLICY_VERSION}/authorizationpolicies`, crd('authorizationpolicies'));
    this.#add('PeerAuthentication', `${POLICY_GROUP}/${POLICY_VERSION}`, `/apis/${POLICY_GROUP}/${POLICY_VERSION}/peerauthentications`, crd('peerauthentications'));
  }

  #add(kind: string, apiVersion: string, path: string, listFn: () => Promise<KubernetesListObject<KubernetesObject>>): void {
    const informer = makeInformer(this.#options.kubeConfig, path, listFn);
    const w: Watched = { kind, apiVersion, path, informer, attempts: 0, timer: undefined, synced: false };
    const changed = (): void => this.#changed();
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('connect', () => {
      if (w.attempts > 0) this.#log.info({ kind, path }, 'Kubernetes watch reconnected');
      w.attempts = 0;
    });
    informer.on('error', (err: unknown) => this.#failed(w, err));
    this.#watched.push(w);
  }

  /** Lists every kind once (the first model), then keeps watching. Rejects if the first list fails. */
  async start(): Promise<MeshModel> {
    await Promise.all(this.#watched.map(async (w) => {
      await w.informer.start();
      w.synced = true;
    }));
    this.#rebuild();
    return this.#model;
  }

  current(): MeshModel {
    return this.#model;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#debounce) clearTimeout(this.#debounce);
    for (const w of this.#watched) {
      if (w.timer) clearTimeout(w.timer);
      await w.informer.stop();
    }
  }

  #failed(w: Watched, err: unknown): void {
    if (this.#stopped) return;
    w.attempts++;
    const delay = this.#options.reconnectDelayMs?.(w.attempts) ?? Math.min(500 * 2 ** (w.attempts - 1), 30_000);
    this.#log.warn({ kind: w.kind, path: w.path, attempt: w.attempts, retryInMs: delay, err: { message: (err as Error)?.message ?? String(err) } }, 'Kubernetes watch failed; keeping the last model and retrying');
    if (w.timer) clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      w.timer = undefined;
      if (this.#stopped) return;
      w.informer.start().then(
        () => this.#changed(),
        (e: unknown) => this.#failed(w, e),
      );
    }, delay);
    w.timer.unref();
  }

  #changed(): void {
    if (this.#stopped || !this.#watched.every((w) => w.synced)) return;
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#rebuild();
    }, this.#options.debounceMs ?? 50);
    this.#debounce.unref();
  }

  #rebuild(): void {
    const objects: ManifestObject[] = [];
    for (const w of this.#watched) {
      // List items come without apiVersion/kind; the model keys on both.
      for (const o of w.informer.list()) objects.push({ ...(o as object), apiVersion: w.apiVersion, kind: w.kind } as ManifestObject);
    }
    const next = buildModel(objects, { generation: this.#generation + 1, ...(this.#options.trustDomain ? { trustDomain: this.#options.trustDomain } : {}) });
    const fingerprint = modelFingerprint(next);
    if (fingerprint === this.#fingerprint) return;
    this.#fingerprint = fingerprint;
    this.#generation++;
    const first = this.#model.generation === 0;
    this.#model = next;
    this.#log.info({ generation: next.generation, workloads: next.workloads.size, services: next.services.size }, 'mesh model updated from Kubernetes');
    if (!first) this.emit('update', next);
  }
}

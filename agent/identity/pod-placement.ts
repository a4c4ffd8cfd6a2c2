/**
 * Which service accounts have pods on which node, for the CA on Kubernetes: one informer on
 * Pods (list + watch), nothing else, so the CA's RBAC is pods get/list/watch and TokenReview.
 * Until the first list succeeds every request is refused (the agent retries with backoff).
 */
import { CoreV1Api, makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../log.js';
import type { IdentityAuthorizer } from './ca-types.js';

export interface PodPlacementOptions {
  kubeConfig: KubeConfig;
  logger?: Logger;
  /** Delay before restarting a failed watch (attempt 1, 2, ...); default 0.5 s doubling to 30 s, with jitter. */
  reconnectDelayMs?: (attempt: number) => number;
}

const isRunnable = (p: V1Pod): boolean => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed' && p.metadata?.deletionTimestamp === undefined;

export class PodPlacement implements IdentityAuthorizer {
  readonly #informer;
  readonly #log: Logger;
  readonly #opts: PodPlacementOptions;
  #attempts = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #synced = false;

  constructor(opts: PodPlacementOptions) {
    this.#opts = opts;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'pod-placement' });
    const core = opts.kubeConfig.makeApiClient(CoreV1Api);
    const list = (() => core.listPodForAllNamespaces()) as unknown as () => Promise<KubernetesListObject<KubernetesObject>>;
    this.#informer = makeInformer(opts.kubeConfig, '/api/v1/pods', list);
    // Attempts are reset only by a list that succeeded: a watch that connects and fails at once
    // must still back off.
    this.#informer.on('error', (err: unknown) => this.#failed(err));
  }

  async start(): Promise<void> {
    await this.#informer.start();
    this.#synced = true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#informer.stop();
  }

  authorize(node: string, identity: { namespace: string; serviceAccount: string }): boolean {
    if (!this.#synced) return false;
    return (this.#informer.list(identity.namespace) as V1Pod[]).some(
      (p) => p.spec?.nodeName === node && (p.spec?.serviceAccountName ?? 'default') === identity.serviceAccount && isRunnable(p),
    );
  }

  #failed(err: unknown): void {
    if (this.#stopped) return;
    this.#attempts++;
    const base = Math.min(500 * 2 ** (this.#attempts - 1), 30_000);
    const delay = this.#opts.reconnectDelayMs?.(this.#attempts) ?? Math.floor(base * (0.8 + 0.2 * Math.random()));
    this.#log.warn({ attempt: this.#attempts, retryInMs: delay, err: { message: (err as Error)?.message ?? String(err) } }, 'pod watch failed; retrying');
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      this.#informer.start().then(
        () => {
          this.#synced = true;
          this.#attempts = 0;
        },
        (e: unknown) => this.#failed(e),
      );
    }, delay);
    this.#timer.unref();
  }
}

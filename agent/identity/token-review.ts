/**
 * Agent authentication on Kubernetes: the agent presents its pod's projected service-account
 * token (audience `weft-ca`); the CA asks the API server (TokenReview) whether it is valid, that
 * it belongs to the agents' service account, and which node the agent's pod runs on (the
 * `authentication.kubernetes.io/node-name` extra of bound tokens; else the pod is looked up).
 */
import { TOKEN_REVIEW_CACHE_MAX, TOKEN_REVIEW_CACHE_MS } from '../config.js';
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { WeftError } from '../errors.js';
import type { NodeAuthenticator } from './ca-types.js';

export const CA_TOKEN_AUDIENCE = 'weft-ca';
const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';

export interface TokenReviewOptions {
  kubeConfig: KubeConfig;
  /** `system:serviceaccount:<ns>:<name>` of the agents; any other account is refused. */
  agentServiceAccount: string;
  audience?: string;
  /** How long a positive review is reused (default 60 s): agents renew many identities at once. */
  cacheMs?: number;
}

export class TokenReviewAuthenticator implements NodeAuthenticator {
  readonly #auth: AuthenticationV1Api;
  readonly #core: CoreV1Api;
  readonly #options: TokenReviewOptions;
  readonly #cache: LRUCache<string, string>;

  constructor(options: TokenReviewOptions) {
    this.#options = options;
    this.#auth = options.kubeConfig.makeApiClient(AuthenticationV1Api);
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#cache = new LRUCache({ max: TOKEN_REVIEW_CACHE_MAX, ttl: options.cacheMs ?? TOKEN_REVIEW_CACHE_MS });
  }

  async authenticate(token: string): Promise<string | undefined> {
    if (token === '') return undefined;
    const cached = this.#cache.get(token);
    if (cached) return cached;
    let review;
    try {
      review = await this.#auth.createTokenReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [this.#options.audience ?? CA_TOKEN_AUDIENCE] } },
      });
    } catch (err) {
      throw new WeftError('WEFT_ERR_CA_UNAVAILABLE', `TokenReview failed (is the API server reachable, may the CA create tokenreviews?): ${(err as Error).message}`, { cause: err });
    }
    const status = review.status;
    if (!status?.authenticated || status.user?.username !== this.#options.agentServiceAccount) return undefined;
    const extra = status.user.extra ?? {};
    let node: string | undefined = extra[NODE_NAME_EXTRA]?.[0];
    if (!node) {
      // Older API servers bind the pod but do not name the node: look the pod up.
      const podName = extra[POD_NAME_EXTRA]?.[0];
      const namespace = this.#options.agentServiceAccount.split(':')[2];
      if (!podName || !namespace) return undefined;
      const pod = await this.#core.readNamespacedPod({ name: podName, namespace }).catch(() => undefined);
      node = pod?.spec?.nodeName;
    }
    if (!node) return undefined;
    this.#cache.set(token, node);
    return node;
  }
}

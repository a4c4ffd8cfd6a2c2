/**
 * Caller authentication on Kubernetes: an agent presents its pod's projected service-account
 * token (audience `weft-ca`); the CA asks the API server (TokenReview) whether it is valid and
 * which node the pod it is bound to runs on (the `authentication.kubernetes.io/node-name` extra
 * of bound tokens; else the pod is looked up). The agents' service account stands for its node
 * (any identity of a pod there); any other service account's token (a waypoint's, an ingress
 * gateway's) is a workload caller that may ask for its own identity only, and only with a token
 * bound to a pod (TokenReview then also proves that pod exists).
 */
import { TOKEN_REVIEW_CACHE_MAX, TOKEN_REVIEW_CACHE_MS } from '../config.js';
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { WeftError } from '../errors.js';
import type { CaCaller, NodeAuthenticator } from './ca-types.js';

export const CA_TOKEN_AUDIENCE = 'weft-ca';
const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';

export interface TokenReviewOptions {
  kubeConfig: KubeConfig;
  /** `system:serviceaccount:<ns>:<name>` of the agents: their tokens stand for their node. */
  agentServiceAccount: string;
  /**
   * Whether other service accounts' pod-bound tokens are accepted, each for its own identity
   * only (waypoints, gateways: default true). False: only the agents' account.
   */
  workloadTokens?: boolean;
  audience?: string;
  /** How long a positive review is reused (default 60 s): agents renew many identities at once. */
  cacheMs?: number;
}

export class TokenReviewAuthenticator implements NodeAuthenticator {
  readonly #auth: AuthenticationV1Api;
  readonly #core: CoreV1Api;
  readonly #options: TokenReviewOptions;
  readonly #cache: LRUCache<string, CaCaller>;

  constructor(options: TokenReviewOptions) {
    this.#options = options;
    this.#auth = options.kubeConfig.makeApiClient(AuthenticationV1Api);
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#cache = new LRUCache({ max: TOKEN_REVIEW_CACHE_MAX, ttl: options.cacheMs ?? TOKEN_REVIEW_CACHE_MS });
  }

  async authenticate(token: string): Promise<string | undefined> {
    const caller = await this.authenticateCaller(token);
    return caller === undefined || caller.workload !== undefined ? undefined : caller.node;
  }

  async authenticateCaller(token: string): Promise<CaCaller | undefined> {
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
    const username = status?.user?.username;
    if (!status?.authenticated || username === undefined) return undefined;
    const agent = username === this.#options.agentServiceAccount;
    const account = serviceAccountOf(username);
    if (account === undefined || (!agent && this.#options.workloadTokens === false)) return undefined;
    const extra = status.user?.extra ?? {};
    const podName = extra[POD_NAME_EXTRA]?.[0];
    // A workload's token must be bound to its pod: a bare service-account token proves no pod.
    if (!agent && !podName) return undefined;
    let node: string | undefined = extra[NODE_NAME_EXTRA]?.[0];
    if (!node) {
      // Older API servers bind the pod but do not name the node: look the pod up.
      if (!podName) return undefined;
      const pod = await this.#core.readNamespacedPod({ name: podName, namespace: account.namespace }).catch(() => undefined);
      node = pod?.spec?.nodeName;
    }
    if (!node) return undefined;
    const caller: CaCaller = agent ? { node } : { node, workload: account };
    this.#cache.set(token, caller);
    return caller;
  }
}

/** `system:serviceaccount:NS:NAME` -> its namespace and name. */
function serviceAccountOf(username: string): { namespace: string; serviceAccount: string } | undefined {
  const parts = username.split(':');
  if (parts.length !== 4 || parts[0] !== 'system' || parts[1] !== 'serviceaccount' || !parts[2] || !parts[3]) return undefined;
  return { namespace: parts[2], serviceAccount: parts[3] };
}

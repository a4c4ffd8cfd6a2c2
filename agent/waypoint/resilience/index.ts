/**
 * The resilience state of one engine process (waypoint or ingress gateway): the backends'
 * circuit breakers, retry budgets and outlier detectors, and the rules' rate-limit buckets,
 * with the clock they read (injected: tests move it).
 */
import { Clusters } from './cluster.js';
import { RateLimits } from './rate-limit.js';

export class Resilience {
  readonly clusters = new Clusters();
  readonly rateLimits = new RateLimits();
  readonly now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
  }
}

export { ClusterState, Clusters, clusterKey } from './cluster.js';
export { OutlierDetector } from './outlier.js';
export { RateLimits } from './rate-limit.js';
export { drawFault, grpcStatusOfHttp } from './fault.js';
export { compileRetry, retries, backoffMs, type AttemptOutcome, type CompiledRetry } from './retry-on.js';
export { ReplayBody } from './replay-body.js';

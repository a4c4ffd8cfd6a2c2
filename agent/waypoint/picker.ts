/**
 * Which endpoint of a backend gets a request: least outstanding requests by power of two
 * choices (two distinct endpoints at random, the one with fewer requests in flight from this
 * waypoint). The counting and the choice are the agent's LoadBalancer (there per connection,
 * here per request); this module narrows the candidates first (a route's subset labels) and keeps
 * the begin/end pairing in one place. No I/O: the random source is injected.
 */
import type { Endpoint, Service } from '../discovery/types.js';
import { LoadBalancer } from '../proxy/load-balancer.js';
import type { BackendTarget } from '../l7/types.js';
import type { OutlierDetector } from './resilience/outlier.js';

export class RequestPicker {
  readonly #balancer: LoadBalancer;

  constructor(random: () => number = Math.random) {
    this.#balancer = new LoadBalancer(random);
  }

  /**
   * The endpoint for one request to `backend`, or undefined when the service has none ready.
   * With an outlier detector, ejected endpoints are skipped (all of them count again below the
   * detector's minHealthPercent: panic); `avoid` (a retry's previous hosts) is skipped where
   * another candidate remains.
   */
  pick(service: Service | undefined, backend: BackendTarget, avoid?: readonly Endpoint[], outlier?: OutlierDetector, now = 0): Endpoint | undefined {
    const all = service?.ports.get(backend.port);
    if (all === undefined || all.length === 0) return undefined;
    const labels = backend.subset?.labels;
    let candidates = labels === undefined ? all : all.filter((e) => e.workload !== undefined && matchesLabels(e.workload.labels, labels));
    if (outlier !== undefined && outlier.anyEjected(now)) {
      const healthy = candidates.filter((e) => !outlier.ejected(e.ip, now));
      if (healthy.length < candidates.length && !outlier.panic(healthy.length, candidates.length)) candidates = healthy;
    }
    if (avoid !== undefined && avoid.length > 0 && candidates.length > 1) {
      const rest = candidates.filter((e) => !avoid.some((a) => a.ip === e.ip && a.port === e.port));
      if (rest.length > 0) candidates = rest;
    }
    return this.#balancer.pick(candidates);
  }

  /** A request to `endpoint` started; call `end` exactly once when it is done. */
  begin(endpoint: Endpoint): void {
    this.#balancer.acquire(endpoint);
  }

  end(endpoint: Endpoint): void {
    this.#balancer.release(endpoint);
  }

  outstanding(endpoint: Endpoint): number {
    return this.#balancer.openTo(endpoint);
  }
}

function matchesLabels(have: Readonly<Record<string, string>>, want: Readonly<Record<string, string>>): boolean {
  for (const k in want) if (have[k] !== want[k]) return false;
  return true;
}

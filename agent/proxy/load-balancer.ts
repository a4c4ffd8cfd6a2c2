/**
 * Power of two choices on open connections: pick two distinct endpoints at random and use the one
 * with fewer connections this agent has open to it. Near-optimal spread without global state
 * and without the herding of "least connections" across many agents.
 */
import type { Endpoint } from '../discovery/types.js';

export class LoadBalancer {
  readonly #open = new Map<string, number>();
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  pick(endpoints: readonly Endpoint[]): Endpoint | undefined {
    const n = endpoints.length;
    if (n === 0) return undefined;
    if (n === 1) return endpoints[0];
    const i = Math.floor(this.#random() * n);
    let j = Math.floor(this.#random() * (n - 1));
    if (j >= i) j++;
    const a = endpoints[i]!;
    const b = endpoints[j]!;
    return this.openTo(a) <= this.openTo(b) ? a : b;
  }

  openTo(endpoint: Endpoint): number {
    return this.#open.get(key(endpoint)) ?? 0;
  }

  acquire(endpoint: Endpoint): void {
    const k = key(endpoint);
    this.#open.set(k, (this.#open.get(k) ?? 0) + 1);
  }

  release(endpoint: Endpoint): void {
    const k = key(endpoint);
    const n = (this.#open.get(k) ?? 1) - 1;
    if (n <= 0) this.#open.delete(k);
    else this.#open.set(k, n);
  }
}

function key(endpoint: Endpoint): string {
  return `${endpoint.ip}:${endpoint.port}`;
}

/**
 * One backend's shared state in this engine process (Envoy's cluster: a Service port, or a
 * DestinationRule subset of it): the circuit breaker's counters (connectionPool), the retry
 * budget, and the outlier detector. Pure bookkeeping; the protocol handlers call it.
 *
 * Accounting (docs/architecture.md, "Resilience"): every attempt is an active request while it
 * is in flight (http2MaxRequests, Envoy's max_requests, for both protocols); an HTTP/1 attempt
 * holds one of maxConnections connection slots from dispatch to its end, and waits in a FIFO of
 * at most http1MaxPendingRequests when none is free; a retry is an active retry from the moment
 * it is decided until its attempt ends (maxRetries, and the budget: at most 20 % of the active
 * and pending requests, but 3 always).
 */
import type { BackendPolicy, BackendTarget } from '../../l7/types.js';
import { RETRY_BUDGET_MIN_CONCURRENT, RETRY_BUDGET_PERCENT } from '../../config.js';
import { OutlierDetector } from './outlier.js';

type Pool = NonNullable<BackendPolicy['connectionPool']>;

/** Called when a connection slot is granted to a waiting attempt. */
export interface SlotWaiter {
  granted(): void;
}

export type SlotResult = 'now' | 'queued' | 'overflow';

export class ClusterState {
  activeRequests = 0;
  activeRetries = 0;
  busyConnections = 0;
  readonly #pending: SlotWaiter[] = [];
  #pool: Pool | undefined;
  #policy: BackendPolicy | undefined;
  #outlierConfig: BackendPolicy['outlierDetection'];
  outlier: OutlierDetector | undefined;

  constructor(policy: BackendPolicy | undefined, now: number) {
    this.update(policy, now);
  }

  /** A new table brought the backend's policy again: limits follow it; the detector is kept while its configuration is the same. */
  update(policy: BackendPolicy | undefined, now: number): void {
    this.#policy = policy;
    this.#pool = policy?.connectionPool;
    const od = policy?.outlierDetection;
    if (od === undefined) this.outlier = undefined;
    else if (this.outlier === undefined || JSON.stringify(od) !== JSON.stringify(this.#outlierConfig)) this.outlier = new OutlierDetector(od, now);
    this.#outlierConfig = od;
  }

  get policy(): BackendPolicy | undefined {
    return this.#policy;
  }

  get pool(): Pool | undefined {
    return this.#pool;
  }

  get pending(): number {
    return this.#pending.length;
  }

  /** An attempt may start (max requests); it is counted until `endRequest`. */
  startRequest(): boolean {
    const max = this.#pool?.http2MaxRequests;
    if (max !== undefined && this.activeRequests >= max) return false;
    this.activeRequests++;
    return true;
  }

  endRequest(): void {
    this.activeRequests--;
  }

  /** Whether HTTP/1 connections are limited (else no slot bookkeeping at all). */
  get limitsConnections(): boolean {
    return this.#pool?.maxConnections !== undefined;
  }

  /** An HTTP/1 connection slot: now, queued (the waiter is called later), or overflow (503 UO). */
  acquireConnection(waiter: SlotWaiter): SlotResult {
    const max = this.#pool?.maxConnections ?? Infinity;
    if (this.busyConnections < max) {
      this.busyConnections++;
      return 'now';
    }
    const maxPending = this.#pool?.http1MaxPendingRequests ?? Infinity;
    if (this.#pending.length >= maxPending) return 'overflow';
    this.#pending.push(waiter);
    return 'queued';
  }

  /** A waiting attempt gave up (timeout, client gone). */
  cancelWait(waiter: SlotWaiter): void {
    const i = this.#pending.indexOf(waiter);
    if (i >= 0) this.#pending.splice(i, 1);
  }

  releaseConnection(): void {
    const next = this.#pending.shift();
    if (next !== undefined) next.granted(); // the slot passes on, busy stays
    else this.busyConnections--;
  }

  /** A retry may be made: under maxRetries and under the budget. Counted until `endRetry`. */
  startRetry(): boolean {
    const max = this.#pool?.maxRetries;
    if (max !== undefined && this.activeRetries >= max) return false;
    const budget = Math.max(RETRY_BUDGET_MIN_CONCURRENT, ((this.activeRequests + this.#pending.length) * RETRY_BUDGET_PERCENT) / 100);
    if (this.activeRetries >= budget) return false;
    this.activeRetries++;
    return true;
  }

  endRetry(): void {
    this.activeRetries--;
  }
}

/** Every backend's state, by `service port subset`. */
export class Clusters {
  readonly #byKey = new Map<string, ClusterState>();

  get(backend: BackendTarget, now: number): ClusterState {
    const key = clusterKey(backend);
    let c = this.#byKey.get(key);
    if (c === undefined) {
      c = new ClusterState(backend.policy, now);
      this.#byKey.set(key, c);
    } else if (c.policy !== backend.policy) c.update(backend.policy, now);
    return c;
  }

  peek(backend: BackendTarget): ClusterState | undefined {
    return this.#byKey.get(clusterKey(backend));
  }
}

export function clusterKey(backend: BackendTarget): string {
  return backend.subset === undefined ? `${backend.service}:${backend.port}` : `${backend.service}:${backend.port}:${backend.subset.name}`;
}

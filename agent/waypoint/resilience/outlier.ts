/**
 * Outlier detection of one backend (Istio's DestinationRule outlierDetection, Envoy's
 * consecutive_5xx and consecutive_gateway_failure detectors): an endpoint that answers N
 * consecutive 5xx (or gateway errors: 502, 503, 504, and connect failures and resets, which
 * Envoy counts as 503) is ejected at once, for baseEjectionTime x the number of times it was
 * ejected. Ejections end, and the multiplier of a healthy endpoint shrinks, at the interval's
 * ticks (Envoy's sweep), computed lazily from the injected clock: no timer runs.
 * maxEjectionPercent caps the ejected share (one endpoint may always be ejected, as Envoy);
 * below minHealthPercent healthy endpoints the detector is ignored (Istio's panic mode).
 */
import type { BackendPolicy } from '../../l7/types.js';

type OutlierConfig = NonNullable<BackendPolicy['outlierDetection']>;

/** Istio's defaults for fields the DestinationRule leaves out. */
export const OUTLIER_DEFAULTS = { consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10, minHealthPercent: 0 } as const;

interface HostState {
  fiveXx: number;
  gateway: number;
  /** Times ejected (the multiplier). */
  ejections: number;
  /** Undefined: not ejected. */
  ejectedUntil: number | undefined;
  /** The tick up to which the multiplier's decay was applied. */
  checkedTick: number;
}

export interface Ejection {
  readonly host: string;
  readonly until: number;
  readonly ejections: number;
  readonly reason: 'consecutive-5xx' | 'consecutive-gateway-errors';
}

export class OutlierDetector {
  readonly #fiveXx: number;
  readonly #gateway: number;
  readonly #interval: number;
  readonly #base: number;
  readonly #maxPercent: number;
  readonly #minHealth: number;
  readonly #start: number;
  readonly #hosts = new Map<string, HostState>();
  /** The latest end of any ejection: after it nothing is ejected (the picker's no-op path). */
  #latestUntil = -Infinity;

  constructor(config: OutlierConfig, now: number) {
    this.#fiveXx = config.consecutive5xxErrors ?? OUTLIER_DEFAULTS.consecutive5xxErrors;
    this.#gateway = config.consecutiveGatewayErrors ?? OUTLIER_DEFAULTS.consecutiveGatewayErrors;
    this.#interval = Math.max(1, config.intervalMs ?? OUTLIER_DEFAULTS.intervalMs);
    this.#base = config.baseEjectionTimeMs ?? OUTLIER_DEFAULTS.baseEjectionTimeMs;
    this.#maxPercent = config.maxEjectionPercent ?? OUTLIER_DEFAULTS.maxEjectionPercent;
    this.#minHealth = config.minHealthPercent ?? OUTLIER_DEFAULTS.minHealthPercent;
    this.#start = now;
  }

  /**
   * One answer (or failure: pass 503) of `host`. Returns the ejection it caused, if any.
   * `total` is the number of endpoints the backend has now (for maxEjectionPercent).
   */
  report(host: string, status: number, total: number, now: number): Ejection | undefined {
    const gatewayError = status === 502 || status === 503 || status === 504;
    const fiveXx = status >= 500 && status <= 599;
    let s = this.#hosts.get(host);
    if (s === undefined) {
      if (!fiveXx) return undefined; // a healthy host without history needs no state
      s = { fiveXx: 0, gateway: 0, ejections: 0, ejectedUntil: undefined, checkedTick: this.#tick(now) };
      this.#hosts.set(host, s);
    }
    this.#settle(s, now);
    s.fiveXx = fiveXx ? s.fiveXx + 1 : 0;
    s.gateway = gatewayError ? s.gateway + 1 : 0;
    if (s.ejectedUntil !== undefined) return undefined;
    if (!fiveXx && s.ejections === 0) {
      // Healthy with nothing to remember: no state kept (pod IPs come and go).
      this.#hosts.delete(host);
      return undefined;
    }
    let reason: Ejection['reason'] | undefined;
    if (this.#fiveXx > 0 && s.fiveXx >= this.#fiveXx) reason = 'consecutive-5xx';
    else if (this.#gateway > 0 && s.gateway >= this.#gateway) reason = 'consecutive-gateway-errors';
    if (reason === undefined) return undefined;
    const ejectedNow = this.ejectedCount(now);
    if (ejectedNow > 0 && (100 * (ejectedNow + 1)) / Math.max(1, total) > this.#maxPercent) return undefined;
    s.ejections++;
    s.fiveXx = 0;
    s.gateway = 0;
    // Brought back at the first sweep after its time is up.
    s.ejectedUntil = this.#tickTime(Math.ceil((now + this.#base * s.ejections - this.#start) / this.#interval));
    if (s.ejectedUntil > this.#latestUntil) this.#latestUntil = s.ejectedUntil;
    return { host, until: s.ejectedUntil, ejections: s.ejections, reason };
  }

  /** False when no endpoint can be ejected at `now` (cheap: no per-host look). */
  anyEjected(now: number): boolean {
    return now < this.#latestUntil;
  }

  ejected(host: string, now: number): boolean {
    const s = this.#hosts.get(host);
    if (s === undefined) return false;
    this.#settle(s, now);
    return s.ejectedUntil !== undefined;
  }

  ejectedCount(now: number): number {
    let n = 0;
    for (const s of this.#hosts.values()) {
      this.#settle(s, now);
      if (s.ejectedUntil !== undefined) n++;
    }
    return n;
  }

  /** Whether ejections are to be ignored: fewer than minHealthPercent of `total` endpoints healthy. */
  panic(healthy: number, total: number): boolean {
    return total > 0 && (100 * healthy) / total < this.#minHealth;
  }

  /** Forgets hosts that left the backend. */
  retain(present: (host: string) => boolean): void {
    for (const host of this.#hosts.keys()) if (!present(host)) this.#hosts.delete(host);
  }

  #tick(now: number): number {
    return Math.floor((now - this.#start) / this.#interval);
  }

  #tickTime(tick: number): number {
    return this.#start + tick * this.#interval;
  }

  /** Applies the sweeps since the last look: the ejection ends; each sweep of a healthy host lowers its multiplier. */
  #settle(s: HostState, now: number): void {
    const tick = this.#tick(now);
    if (tick <= s.checkedTick) return;
    if (s.ejectedUntil !== undefined && now >= s.ejectedUntil) {
      const endTick = Math.round((s.ejectedUntil - this.#start) / this.#interval);
      s.ejectedUntil = undefined;
      s.ejections = Math.max(0, s.ejections - Math.max(0, tick - endTick));
    } else if (s.ejectedUntil === undefined) s.ejections = Math.max(0, s.ejections - (tick - s.checkedTick));
    s.checkedTick = tick;
  }
}

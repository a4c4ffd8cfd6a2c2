/**
 * Capped exponential backoff with jitter, as client-go's reflector uses (800 ms doubling to 30 s,
 * jitter 1.0), and the clock it waits on, injectable so tests count retries over simulated time.
 */

import { DISCOVERY_BACKOFF_INITIAL_MS, DISCOVERY_BACKOFF_MAX_MS } from '../config.js';

export interface Clock {
  now(): number;
  /** Resolves after `ms` (or at once when `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        signal?.removeEventListener('abort', done);
        clearTimeout(timer);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** 0..1: the delay is d * (1 - jitter/2 + random * jitter/2)... see next(). Default 1. */
  jitter?: number;
  random?: () => number;
}


export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialMs ?? DISCOVERY_BACKOFF_INITIAL_MS;
    this.#max = options.maxMs ?? DISCOVERY_BACKOFF_MAX_MS;
    this.#jitter = options.jitter ?? 1;
    this.#random = options.random ?? Math.random;
  }

  get attempt(): number {
    return this.#attempt;
  }

  /**
   * The delay before the next try: the base doubles per failure up to the cap, and the jitter
   * spreads it over [base / (1 + jitter), base] so that agents restarted together (or cut off by
   * one API server restart) do not come back in step. Never above the cap.
   */
  next(): number {
    const base = Math.min(this.#max, this.#initial * 2 ** this.#attempt);
    this.#attempt++;
    const low = base / (1 + this.#jitter);
    return Math.round(low + (base - low) * this.#random());
  }

  /** After something worked (a list, a watch that delivered): start again from the bottom. */
  reset(): void {
    this.#attempt = 0;
  }
}

/**
 * Local rate limits (a Weft LocalRateLimitPolicy on a route rule): Envoy's local_ratelimit token
 * bucket, one per rule (or per the limit's `bucket`: a policy on a Service shares one) per
 * engine process, starting full, `tokensPerFill` added at each `fillIntervalMs` tick up to
 * `maxTokens`. Refilled lazily from the injected clock (no timer).
 * The bucket of a rule survives a route table rebuild while its limits stay the same.
 */
import type { RouteRateLimit } from '../../l7/types.js';

class TokenBucket {
  tokens: number;
  lastFill: number;
  constructor(readonly limit: RouteRateLimit, now: number) {
    this.tokens = limit.maxTokens;
    this.lastFill = now;
  }

  same(limit: RouteRateLimit): boolean {
    const l = this.limit;
    return l === limit || (l.maxTokens === limit.maxTokens && l.tokensPerFill === limit.tokensPerFill && l.fillIntervalMs === limit.fillIntervalMs);
  }

  take(now: number): boolean {
    const interval = Math.max(1, this.limit.fillIntervalMs);
    const fills = Math.floor((now - this.lastFill) / interval);
    if (fills > 0) {
      this.tokens = Math.min(this.limit.maxTokens, this.tokens + fills * this.limit.tokensPerFill);
      this.lastFill += fills * interval;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  /** Seconds until the next fill (x-ratelimit-reset). */
  resetSeconds(now: number): number {
    return Math.max(0, Math.ceil((this.lastFill + this.limit.fillIntervalMs - now) / 1000));
  }
}

export interface RateVerdict {
  readonly allowed: boolean;
  /** Envoy's x-ratelimit-* headers (draft 03), on the 429 and on the answers let through. */
  readonly headers: Readonly<Record<string, string>>;
}

export class RateLimits {
  readonly #buckets = new Map<string, TokenBucket>();

  /** Takes a token of the bucket named `rule` (the rule's name, or the limit's shared `bucket`). */
  take(rule: string, limit: RouteRateLimit, now: number): RateVerdict {
    let b = this.#buckets.get(rule);
    if (b === undefined || !b.same(limit)) {
      b = new TokenBucket(limit, now);
      this.#buckets.set(rule, b);
    }
    const allowed = b.take(now);
    return {
      allowed,
      headers: { 'x-ratelimit-limit': String(limit.maxTokens), 'x-ratelimit-remaining': String(Math.floor(b.tokens)), 'x-ratelimit-reset': String(b.resetSeconds(now)) },
    };
  }
}

/**
 * Which outcomes of an attempt a rule's retry policy retries, with Envoy's retry_on semantics
 * (Istio writes them into `retries.retryOn`; GEP-1731 `codes` arrive as statusCodes). Pure: a
 * RouteRetry is compiled once (cached on the object) into a bit set and a code list.
 */
import type { RouteRetry } from '../../l7/types.js';

/** What became of one attempt, as far as retrying goes. */
export type AttemptOutcome =
  | { readonly kind: 'status'; readonly status: number; readonly grpcStatus: number | undefined }
  /** The upstream could not be reached (TCP, TLS, CONNECT refused): Envoy's connect failure. */
  | { readonly kind: 'connect-failure' }
  /** Reset or closed before the response head (Envoy's "reset"); also the per-try timeout. */
  | { readonly kind: 'reset' }
  /** HTTP/2 RST_STREAM REFUSED_STREAM before the response head. */
  | { readonly kind: 'refused-stream' };

const ON_5XX = 1;
const ON_GATEWAY = 2;
const ON_CONNECT = 4;
const ON_RESET = 8;
const ON_4XX = 16;
const ON_CODES = 32;
const ON_REFUSED = 64;
const GRPC_CANCELLED = 128;
const GRPC_DEADLINE = 256;
const GRPC_INTERNAL = 512;
const GRPC_EXHAUSTED = 1024;
const GRPC_UNAVAILABLE = 2048;

const NAMES: Readonly<Record<string, number>> = {
  '5xx': ON_5XX,
  'gateway-error': ON_GATEWAY,
  'connect-failure': ON_CONNECT,
  reset: ON_RESET,
  'retriable-4xx': ON_4XX,
  'retriable-status-codes': ON_CODES,
  'refused-stream': ON_REFUSED,
  cancelled: GRPC_CANCELLED,
  'deadline-exceeded': GRPC_DEADLINE,
  internal: GRPC_INTERNAL,
  'resource-exhausted': GRPC_EXHAUSTED,
  unavailable: GRPC_UNAVAILABLE,
};

export interface CompiledRetry {
  readonly attempts: number;
  readonly perTryTimeoutMs: number | undefined;
  readonly backoffBaseMs: number;
  readonly on: number;
  readonly codes: readonly number[];
}

/** Envoy's default base interval of the retry backoff. */
export const DEFAULT_BACKOFF_BASE_MS = 25;

const compiled = new WeakMap<RouteRetry, CompiledRetry>();

export function compileRetry(retry: RouteRetry): CompiledRetry {
  let c = compiled.get(retry);
  if (c !== undefined) return c;
  let on = 0;
  const codes = [...(retry.statusCodes ?? [])];
  for (const raw of retry.retryOn) {
    const name = raw.trim().toLowerCase();
    if (/^\d{3}$/.test(name)) {
      // Istio's retryOn takes bare status codes: Envoy's retriable-status-codes with that code.
      codes.push(Number(name));
      continue;
    }
    on |= NAMES[name] ?? 0;
  }
  // Listed codes are retried whether or not `retriable-status-codes` is written beside them.
  if (codes.length > 0) on |= ON_CODES;
  c = { attempts: Math.max(0, retry.attempts), perTryTimeoutMs: retry.perTryTimeoutMs, backoffBaseMs: retry.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS, on, codes };
  compiled.set(retry, c);
  return c;
}

/** Whether the policy retries this outcome (attempts and budget are the caller's). */
export function retries(policy: CompiledRetry, outcome: AttemptOutcome): boolean {
  const on = policy.on;
  switch (outcome.kind) {
    case 'connect-failure':
      return (on & (ON_5XX | ON_GATEWAY | ON_RESET | ON_CONNECT)) !== 0;
    case 'reset':
      return (on & (ON_5XX | ON_GATEWAY | ON_RESET)) !== 0;
    case 'refused-stream':
      return (on & (ON_5XX | ON_GATEWAY | ON_RESET | ON_REFUSED)) !== 0;
    case 'status': {
      const s = outcome.status;
      if ((on & ON_5XX) !== 0 && s >= 500 && s <= 599) return true;
      if ((on & ON_GATEWAY) !== 0 && (s === 502 || s === 503 || s === 504)) return true;
      if ((on & ON_4XX) !== 0 && s === 409) return true;
      if ((on & ON_CODES) !== 0 && policy.codes.includes(s)) return true;
      const g = outcome.grpcStatus;
      if (g === undefined) return false;
      return ((on & GRPC_CANCELLED) !== 0 && g === 1) || ((on & GRPC_DEADLINE) !== 0 && g === 4) || ((on & GRPC_EXHAUSTED) !== 0 && g === 8) || ((on & GRPC_INTERNAL) !== 0 && g === 13) || ((on & GRPC_UNAVAILABLE) !== 0 && g === 14);
    }
  }
}

/**
 * Envoy's jittered exponential backoff: before retry n (1-based) a wait drawn uniformly from
 * [0, base * 2^(n-1)), the interval capped at 10 x base.
 */
export function backoffMs(retry: number, baseMs: number, random: number): number {
  const interval = Math.min(baseMs * 2 ** Math.max(0, retry - 1), baseMs * 10);
  return Math.floor(random * interval);
}

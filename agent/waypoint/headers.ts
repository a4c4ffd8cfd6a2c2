/**
 * Request and response heads as the waypoint forwards them (pure): hop-by-hop headers dropped
 * (RFC 9110 section 7.6.1; HTTP/2 forbids them), a route's header modifiers applied, the
 * mirror's `-shadow` authority. Trace headers (traceparent, tracestate, b3, x-b3-*) are ordinary
 * end-to-end headers here: they pass untouched.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderMap } from '../l7/paths.js';

export type { HeaderMap };

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'http2-settings', 'host']);

/**
 * The end-to-end headers of a request or response, without pseudo-headers and hop-by-hop ones
 * (also those the `connection` header names). `te: trailers` is kept for HTTP/2 (gRPC needs it).
 */
export function endToEnd(headers: IncomingHttpHeaders, keepTeTrailers: boolean): HeaderMap {
  const out: HeaderMap = {};
  const named = connectionNamed(headers.connection);
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a /* ':' */ || HOP_BY_HOP.has(name) || (named !== undefined && named.has(name))) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  if (keepTeTrailers && typeof headers.te === 'string' && /(^|,)\s*trailers\s*(,|$)/i.test(headers.te)) out.te = 'trailers';
  return out;
}

function connectionNamed(v: string | string[] | undefined): Set<string> | undefined {
  if (v === undefined) return undefined;
  const names = (Array.isArray(v) ? v.join(',') : v).split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  return names.length === 0 ? undefined : new Set(names);
}

/** Envoy's mirror authority: `-shadow` after the host, before any port (`reviews:9080` -> `reviews-shadow:9080`). */
export function shadowAuthority(authority: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(authority);
  if (m === null) return `${authority}-shadow`;
  return `${m[1]}-shadow${m[2] ?? ''}`;
}

/** `forwarded: for="1.2.3.4"` (RFC 7239; IPv6 in brackets), what the destination agent trusts from a waypoint. */
export function forwardedFor(ip: string): string {
  return ip.includes(':') ? `for="[${ip}]"` : `for="${ip}"`;
}

/** gRPC requests are `application/grpc` or `application/grpc+proto` etc. */
export function isGrpc(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && contentType.startsWith('application/grpc');
}

/**
 * The response_flags label of a TCP connection, from how it ended. Envoy's codes where Envoy has
 * one for TCP (its %RESPONSE_FLAGS%, which Istio's label reports and Kiali reads): `UF` the
 * upstream connection failed (refused, unreachable, timed out, TLS or HBONE CONNECT failure),
 * `UH` no healthy upstream (a service without a ready endpoint). A connection refused by
 * authorization policy is `DENY`, as ztunnel reports it (Envoy has no TCP flag for it). Anything
 * else, including a connection the peer reset mid-stream, is `-`, as in Envoy and ztunnel.
 */
export const NO_FLAGS = '-';
export const UPSTREAM_CONNECTION_FAILURE = 'UF';
export const NO_HEALTHY_UPSTREAM = 'UH';
export const POLICY_DENIED = 'DENY';

/** Codes of a connect that never reached the other end's application. */
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EADDRNOTAVAIL',
  'WEFT_ERR_PORTS_EXHAUSTED',
  'WEFT_ERR_CONNECT_TIMEOUT',
  'WEFT_ERR_HBONE_CONNECT',
  'WEFT_ERR_HBONE_SESSION',
  'WEFT_ERR_TLS_HANDSHAKE',
  'WEFT_ERR_TLS_PEER_UNTRUSTED',
  'WEFT_ERR_TLS_PEER_IDENTITY',
]);

export interface ConnectionEnd {
  /** The stable code the connection ended with (WEFT_ERR_* or a socket's E* code), if any. */
  errorCode: string | undefined;
  /** Its message (an HBONE refusal ends with the peer's HTTP status). */
  error: string | undefined;
  /** Bytes the upstream sent back: a connection that got an answer did not fail to connect. */
  bytesToClient: number;
}

export function tcpResponseFlags(end: ConnectionEnd): string {
  const code = end.errorCode;
  if (code === undefined) return NO_FLAGS;
  if (code === 'WEFT_ERR_POLICY_DENIED') return POLICY_DENIED;
  if (code === 'WEFT_ERR_NO_ENDPOINT') return NO_HEALTHY_UPSTREAM;
  if (code === 'WEFT_ERR_HBONE_REFUSED') {
    // The destination agent answered the CONNECT: 403 is its policy, 503 its app was not there.
    if (/ 403$/.test(end.error ?? '')) return POLICY_DENIED;
    return UPSTREAM_CONNECTION_FAILURE;
  }
  if (CONNECT_FAILURES.has(code) && end.bytesToClient === 0) return UPSTREAM_CONNECTION_FAILURE;
  return NO_FLAGS;
}

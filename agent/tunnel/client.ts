/**
 * The outbound end of one HBONE connection: TLS 1.3 over a socket the caller made (inside the
 * source pod's namespace, with its mark), the server's chain checked against the trust bundle
 * and its SPIFFE ID against the one discovery expects; then an HTTP/2 session that carries
 * CONNECT streams. Pooling is pool.ts's job.
 */
import { connect as h2connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, type PeerCertificate, type TLSSocket } from 'node:tls';
import { kTlsSocket } from './server.js';
import { WeftError, isWeftError } from '../errors.js';
import { spiffeIdFromSan } from '../identity/spiffe.js';
import { formatAuthority } from './authority.js';
import { ALPN_H2, H2_SETTINGS, TLS_VERSIONS, type TlsCredentials } from './settings.js';
import { defaultHboneImpl, leanSessionOptions, type HboneImpl } from './impl.js';
import { LeanSession } from './h2/session.js';
import { CONNECT_RESPONSE_TIMEOUT_MS, CONNECTION_WINDOW_BYTES, MAX_SESSION_MEMORY_MB, MAX_STREAMS_PER_CONNECTION, TLS_HANDSHAKE_TIMEOUT_MS } from '../config.js';

export interface OpenSessionOptions {
  /** A TCP socket to the destination's 15008, connected or connecting. */
  socket: Socket;
  credentials: TlsCredentials;
  /** The SPIFFE ID the server must present. */
  expectedIdentity: string;
  /** For the session's URL only (`https://host:port`); nothing is resolved. */
  host: string;
  port: number;
  handshakeTimeoutMs?: number;
  /** HTTP/2 implementation (default: the process default, agent/tunnel/impl.ts). */
  impl?: HboneImpl;
}

/** OpenSSL verification results: the peer's chain is not trusted (vs. a protocol failure). */
const UNTRUSTED_RE = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED|SELF_SIGNED_CERT|INVALID_CA|PATH_LENGTH|INVALID_PURPOSE|CERT_UNTRUSTED|CERT_REJECTED|HOSTNAME_MISMATCH)/;

function classifyTlsError(err: unknown, target: string): WeftError {
  if (isWeftError(err)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNTRUSTED_RE.test(code)) {
    return new WeftError('WEFT_ERR_TLS_PEER_UNTRUSTED', `server ${target} presented a certificate that does not verify: ${code}`, { cause: err });
  }
  return new WeftError('WEFT_ERR_TLS_HANDSHAKE', `TLS handshake with ${target} failed: ${(err as Error).message}`, { cause: err });
}

/** Returns an Error (refusing the handshake) unless the server's only URI SAN is `expected`. */
function identityCheck(expected: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const parsed = spiffeIdFromSan(cert.subjectaltname);
    if ('reason' in parsed) return new WeftError('WEFT_ERR_TLS_PEER_IDENTITY', `server certificate refused: ${parsed.reason}`);
    if (parsed.id !== expected) {
      return new WeftError('WEFT_ERR_TLS_PEER_IDENTITY', `server presented ${parsed.id}, expected ${expected}`);
    }
    return undefined;
  };
}

/** Handshakes TLS on `socket` and starts an HTTP/2 session on it. */
export async function openHboneSession(opts: OpenSessionOptions): Promise<ClientHttp2Session> {
  const target = formatAuthority(opts.host, opts.port);
  const c = opts.credentials;
  const tlsSocket = tlsConnect({
    socket: opts.socket,
    secureContext: c.secureContext ?? createSecureContext({ key: c.keyPem, cert: c.certPem + c.chainPem.join(''), ca: c.trustBundle, ...TLS_VERSIONS }),
    ...TLS_VERSIONS,
    ALPNProtocols: [ALPN_H2],
    rejectUnauthorized: true,
    checkServerIdentity: identityCheck(opts.expectedIdentity),
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      tlsSocket.destroy(new WeftError('WEFT_ERR_TLS_HANDSHAKE', `no TLS handshake with ${target} within ${opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS} ms`));
    }, opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    const onError = (err: Error): void => {
      clearTimeout(timer);
      tlsSocket.off('secureConnect', onSecure);
      tlsSocket.destroy();
      reject(classifyTlsError(err, target));
    };
    const onSecure = (): void => {
      clearTimeout(timer);
      tlsSocket.off('error', onError);
      resolve();
    };
    tlsSocket.once('error', onError);
    tlsSocket.once('secureConnect', onSecure);
  });
  if (tlsSocket.alpnProtocol !== ALPN_H2) {
    tlsSocket.destroy();
    throw new WeftError('WEFT_ERR_TLS_HANDSHAKE', `server ${target} did not negotiate h2 (ALPN ${String(tlsSocket.alpnProtocol)})`);
  }
  if ((opts.impl ?? defaultHboneImpl()) === 'lean') {
    const lean = new LeanSession(tlsSocket, leanSessionOptions(false));
    // The pool puts its own listener on; until then an error must not throw.
    lean.on('error', ignoreError);
    (lean as LeanSession & { [kTlsSocket]?: TLSSocket })[kTlsSocket] = tlsSocket;
    lean.start();
    // LeanSession has the part of ClientHttp2Session that pool.ts and openConnectStream use
    // (request, ping, close, destroy, destroyed, remoteSettings, socket, goaway/error/close).
    return lean as unknown as ClientHttp2Session;
  }
  const session = h2connect(`https://${formatAuthority(opts.host, opts.port)}`, {
    createConnection: () => tlsSocket,
    settings: H2_SETTINGS,
    maxSessionMemory: MAX_SESSION_MEMORY_MB,
    peerMaxConcurrentStreams: MAX_STREAMS_PER_CONNECTION,
  });
  session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
  (session as ClientHttp2Session & { [kTlsSocket]?: TLSSocket })[kTlsSocket] = tlsSocket;
  return session;
}

function ignoreError(): void {}

/** Whether a failed stream never reached the server's handler, so opening it elsewhere is safe. */
export function isRetryableStreamError(err: unknown): boolean {
  return isWeftError(err, 'WEFT_ERR_HBONE_SESSION') || (isWeftError(err, 'WEFT_ERR_HBONE_STREAM') && (err.cause as { rstCode?: number } | undefined)?.rstCode === h2.NGHTTP2_REFUSED_STREAM);
}

/**
 * Opens one CONNECT stream for `authority` and resolves with it after the 200. A different
 * status rejects with WEFT_ERR_HBONE_REFUSED; a reset or closed session before it with
 * WEFT_ERR_HBONE_STREAM / WEFT_ERR_HBONE_SESSION.
 */
export function openConnectStream(session: ClientHttp2Session, authority: string, headers?: OutgoingHttpHeaders, responseTimeoutMs: number = CONNECT_RESPONSE_TIMEOUT_MS): Promise<ClientHttp2Stream> {
  let stream: ClientHttp2Stream;
  try {
    stream = session.request({ ...headers, ':method': 'CONNECT', ':authority': authority }, { endStream: false });
  } catch (err) {
    return Promise.reject(new WeftError('WEFT_ERR_HBONE_SESSION', `cannot open a stream: ${(err as Error).message}`, { cause: err }));
  }
  return new Promise((resolve, reject) => {
    // A server that never answers (a dead peer behind a live session) must not hold the client.
    const timer = setTimeout(() => {
      cleanup();
      stream.close(h2.NGHTTP2_CANCEL);
      reject(new WeftError('WEFT_ERR_CONNECT_TIMEOUT', `CONNECT ${authority} not answered within ${responseTimeoutMs} ms`));
    }, responseTimeoutMs);
    timer.unref();
    const cleanup = (): void => {
      clearTimeout(timer);
      stream.off('response', onResponse);
      stream.off('close', onClose);
      stream.off('error', onError);
    };
    const onResponse = (h: IncomingHttpHeaders): void => {
      cleanup();
      const status = Number(h[':status']);
      if (status === 200) {
        resolve(stream);
        return;
      }
      stream.close(h2.NGHTTP2_CANCEL);
      reject(new WeftError('WEFT_ERR_HBONE_REFUSED', `CONNECT ${authority} answered ${String(status)}`));
    };
    const onError = (err: Error): void => {
      cleanup();
      const code = (err as { code?: string }).code;
      const sessionGone = code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION' || code === 'ERR_HTTP2_SESSION_ERROR' || stream.session?.destroyed === true;
      reject(
        sessionGone
          ? new WeftError('WEFT_ERR_HBONE_SESSION', `session closed before CONNECT ${authority} was answered: ${err.message}`, { cause: err })
          : new WeftError('WEFT_ERR_HBONE_STREAM', `CONNECT ${authority} failed: ${err.message}`, { cause: Object.assign(err, { rstCode: stream.rstCode }) }),
      );
    };
    const onClose = (): void => {
      cleanup();
      const rstCode = stream.rstCode;
      reject(
        new WeftError('WEFT_ERR_HBONE_STREAM', `CONNECT ${authority} closed before an answer (RST code ${String(rstCode)})`, {
          cause: { rstCode },
        }),
      );
    };
    // Each removes all three (cleanup), so 'on' does what 'once' would without its wrappers.
    stream.on('response', onResponse);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

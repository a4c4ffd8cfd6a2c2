/**
 * The inbound end of HBONE: HTTP/2 over mutual TLS 1.3 on 15008.
 *
 * Connection phases: TCP accept (the secure context is refreshed from the credentials callback
 * here, so a rotated certificate serves the next handshake while open connections keep theirs)
 * -> TLS handshake with a client certificate requested -> session check (chain verified against
 * the trust bundle, exactly one SPIFFE URI SAN; otherwise the session is destroyed and the
 * reason logged) -> per stream: CONNECT with `:authority` ip:port, else 405 / 400 -> onStream.
 */
import { setLingerZero, socketFd } from '../../native/index.js';
import { createSecureServer, constants as h2, type Http2Session, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { defaultHboneImpl, leanSessionOptions, type HboneImpl } from './impl.js';
import { LeanSession } from './h2/session.js';
import type { LeanStream } from './h2/stream.js';
import { WeftError } from '../errors.js';
import { spiffeIdFromSan, tryParseSpiffeId } from '../identity/spiffe.js';
import { silentLogger, type Logger } from '../log.js';
import { parseAuthority } from './authority.js';
import { CONNECTION_WINDOW_BYTES, HBONE_KEEPALIVE_MS, HBONE_SERVER_IDLE_TIMEOUT_MS, MAX_SESSION_MEMORY_MB, SESSION_CLOSE_GRACE_MS, TLS_HANDSHAKE_TIMEOUT_MS } from '../config.js';
import { ALPN_H2, H2_SETTINGS, TLS_VERSIONS, type TlsCredentials } from './settings.js';

/** What the stream handler learns about a CONNECT. */
export interface HboneStreamInfo {
  /** SPIFFE ID of the client (verified chain, single URI SAN). */
  peerIdentity: string;
  /** `:authority` as sent: the original destination. */
  authority: string;
  /** `authority` parsed. */
  host: string;
  port: number;
  /** `forwarded` header (original client address); trust it only from a waypoint. */
  forwarded: string | undefined;
  /** `baggage` header (source workload attributes). */
  baggage: string | undefined;
  /** This end of the TLS connection (the pod's IP and 15008). */
  localAddress: string | undefined;
  localPort: number | undefined;
  /** The TCP peer (the source pod, or a waypoint). */
  remoteAddress: string | undefined;
  remotePort: number | undefined;
}

export interface HboneServerOptions {
  /**
   * The server's current certificate. Called for every accepted connection; when it returns a
   * different object than last time, new handshakes use the new one. Undefined keeps the last.
   */
  credentials: () => TlsCredentials | undefined;
  /**
   * Handles an accepted CONNECT: answer `stream.respond({':status': 200})` and pipe, or refuse
   * with another status. A throw answers 500 (or resets the stream if headers went out).
   */
  onStream: (stream: ServerHttp2Stream, info: HboneStreamInfo) => void;
  logger?: Logger;
  /** Handshake deadline (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Trust domain every peer must belong to (default: that of the server's own identity). */
  trustDomain?: string;
  /** A session without open streams is closed after this long (default: agent/config.ts). */
  sessionIdleTimeoutMs?: number;
  /** HTTP/2 implementation (default: the process default, agent/tunnel/impl.ts). */
  impl?: HboneImpl;
}

export interface HboneServerStats {
  sessionsOpen: number;
  sessionsAccepted: number;
  /** Connections refused after the handshake (untrusted chain, bad or missing SPIFFE ID). */
  sessionsRefused: number;
  /** TLS handshakes that failed (protocol, ALPN, timeout). */
  handshakeFailures: number;
  streamsAccepted: number;
  /** Streams answered 400/405 by the server itself. */
  streamsRejected: number;
}

export interface HboneServer {
  listen(port: number, host?: string): Promise<AddressInfo>;
  listen(handle: { fd: number }): Promise<AddressInfo>;
  address(): AddressInfo | undefined;
  /** Re-reads the credentials callback now (it is also read on every accepted connection). */
  refreshCredentials(): void;
  /** GOAWAY to every session; resolves when all are closed (destroys the rest after `timeoutMs`, default 5 s). */
  close(opts?: { timeoutMs?: number }): Promise<void>;
  stats(): HboneServerStats;
}

const kPeer = Symbol('weft.hbonePeer');
interface PeerInfo {
  identity: string;
  /** Streams open on the session; the idle timer runs while this is 0. */
  streams: number;
  idleTimer: NodeJS.Timeout | undefined;
  idleMs: number;
  /** The peer certificate's validity (ms), checked on every stream: a session outlives it. */
  notBefore: number;
  notAfter: number;
}
type CheckedSession = ServerHttp2Session & { [kPeer]?: PeerInfo };

/**
 * Closes a session that has had no stream for its idle time. Measured on streams, not on bytes:
 * after a protocol error nghttp2 answers GOAWAY and ignores the rest, so a client that keeps
 * sending would otherwise keep an activity timer alive (F3 of issue 10).
 */
function armIdle(session: CheckedSession, peer: PeerInfo): void {
  clearTimeout(peer.idleTimer);
  peer.idleTimer = setTimeout(onSessionIdle, peer.idleMs, session);
  peer.idleTimer.unref();
}

function onSessionIdle(session: CheckedSession): void {
  const peer = session[kPeer];
  if (peer === undefined || peer.streams > 0 || session.destroyed) return;
  // GOAWAY; a peer that does not finish the close in time (gone, or nghttp2 stopped after a
  // protocol error) is reset.
  closeSessionGracefully(session, Math.min(SESSION_CLOSE_GRACE_MS, peer.idleMs));
}

/** Shared by every stream: one stream fewer on its session; the last one arms the idle timer. */
function onCountedStreamClose(this: ServerHttp2Stream): void {
  const session = this.session as CheckedSession | undefined;
  const peer = session?.[kPeer];
  if (session === undefined || peer === undefined) return;
  if (--peer.streams === 0 && !session.destroyed) armIdle(session, peer);
}

/**
 * The TLS socket under a session. `session.socket` is a proxy that refuses destroy(), and a
 * gracefully closed session is `destroyed` while its socket still waits for the peer's FIN.
 */
export const kTlsSocket = Symbol('weft.tlsSocket');
type ClosableSession = Pick<Http2Session, 'close' | 'destroy' | 'destroyed'> & { [kTlsSocket]?: TLSSocket };

/**
 * A session closed gracefully (GOAWAY) that is still open after the grace time is reset: its
 * socket gets SO_LINGER 0 before the destroy, so a peer that never acknowledges our FIN (a
 * deleted pod) leaves no FIN_WAIT1 socket behind, which would keep that pod's namespace alive.
 */
export function closeSessionGracefully(session: ClosableSession, graceMs: number = SESSION_CLOSE_GRACE_MS): void {
  if (session.destroyed) return;
  session.close();
  const timer = setTimeout(resetSession, graceMs, session);
  timer.unref();
}

/** Destroys a session with a TCP reset (no FIN_WAIT, no TIME_WAIT). */
export function resetSession(session: ClosableSession): void {
  const socket = session[kTlsSocket];
  if (socket !== undefined && !socket.destroyed) {
    try {
      // The TLS socket's handle wraps the TCP descriptor.
      setLingerZero(socketFd(socket));
    } catch {
      // No descriptor any more: a plain destroy is all that is left.
    }
    socket.destroy();
  }
  if (!session.destroyed) session.destroy();
}

/** Shared by every stream (no closure per stream): a reset by the peer is routine, not a failure. */
function onStreamError(this: ServerHttp2Stream & { [kLog]?: Logger }, err: Error): void {
  this[kLog]?.debug({ err }, 'HBONE stream error');
}
const kLog = Symbol('weft.log');

export function createHboneServer(opts: HboneServerOptions): HboneServer {
  return new HboneServerImpl(opts);
}

class HboneServerImpl implements HboneServer {
  readonly #opts: HboneServerOptions;
  readonly #log: Logger;
  /** node:http2's server, or a plain TLS server whose connections get a LeanSession. */
  readonly #server: Http2SecureServer | TlsServer;
  readonly #sessions = new Set<ServerHttp2Session>();
  #applied: TlsCredentials | undefined;
  #nextTlsSocket: TLSSocket | undefined;
  /** Peers must be of this trust domain: the option, else the server's own identity's. */
  readonly #trustDomain: string;
  #stats: HboneServerStats = { sessionsOpen: 0, sessionsAccepted: 0, sessionsRefused: 0, handshakeFailures: 0, streamsAccepted: 0, streamsRejected: 0 };

  constructor(opts: HboneServerOptions) {
    this.#opts = opts;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'hbone-server' });
    const creds = opts.credentials();
    if (creds === undefined) throw new WeftError('WEFT_ERR_IDENTITY_UNAVAILABLE', 'HBONE server needs a certificate before it starts');
    this.#applied = creds;
    const own = tryParseSpiffeId(creds.identity)?.trustDomain;
    const trustDomain = opts.trustDomain ?? own;
    if (trustDomain === undefined) throw new WeftError('WEFT_ERR_IDENTITY_INVALID', `HBONE server identity ${creds.identity} is not a workload SPIFFE ID`);
    this.#trustDomain = trustDomain;
    const tlsOptions = {
      ...contextOptions(creds),
      ...TLS_VERSIONS,
      ALPNProtocols: [ALPN_H2],
      requestCert: true,
      // Verified in #onSession instead, so a refusal can be logged with its reason (Node
      // would otherwise drop the socket silently).
      rejectUnauthorized: false,
      handshakeTimeout: opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS,
    };
    const lean = (opts.impl ?? defaultHboneImpl()) === 'lean';
    this.#server = lean
      ? createTlsServer(tlsOptions)
      : createSecureServer({ ...tlsOptions, allowHTTP1: false, settings: H2_SETTINGS, maxSessionMemory: MAX_SESSION_MEMORY_MB, unknownProtocolTimeout: 1000 });
    // Before the TLS wrapper is made for this socket: runs ahead of tls.Server's own listener.
    this.#server.prependListener('connection', (socket: Socket) => {
      this.#maybeRotate();
      socket.setNoDelay(true);
      socket.setKeepAlive(true, HBONE_KEEPALIVE_MS);
    });
    this.#server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      this.#stats.handshakeFailures++;
      this.#log.warn({ remote: socket.remoteAddress, code: 'WEFT_ERR_TLS_HANDSHAKE', reason: err.code ?? err.message }, 'HBONE handshake failed');
    });
    if (lean) {
      this.#server.on('secureConnection', (socket: TLSSocket) => this.#onLeanConnection(socket));
      return;
    }
    // Node makes the session inside its own 'secureConnection' listener and emits 'session'
    // before returning: the socket seen here is the one of the next session.
    this.#server.prependListener('secureConnection', (socket: TLSSocket) => {
      this.#nextTlsSocket = socket;
    });
    this.#server.on('session', (s: ServerHttp2Session) => {
      const socket = this.#nextTlsSocket;
      this.#nextTlsSocket = undefined;
      if (socket !== undefined) (s as ServerHttp2Session & { [kTlsSocket]?: TLSSocket })[kTlsSocket] = socket;
      this.#onSession(s);
    });
    this.#server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.#onStream(stream, headers));
    this.#server.on('unknownProtocol', (socket: TLSSocket) => this.#refuseAlpn(socket));
  }

  #refuseAlpn(socket: TLSSocket): void {
    this.#stats.handshakeFailures++;
    this.#log.warn({ remote: socket.remoteAddress, code: 'WEFT_ERR_TLS_HANDSHAKE', reason: `ALPN ${String(socket.alpnProtocol)} is not h2` }, 'HBONE handshake failed');
    socket.destroy();
  }

  /** A TLS connection of the lean server: the same checks as node:http2's sessions get. */
  #onLeanConnection(socket: TLSSocket): void {
    if (socket.alpnProtocol !== ALPN_H2) {
      this.#refuseAlpn(socket);
      return;
    }
    const session = new LeanSession(socket, leanSessionOptions(true));
    (session as LeanSession & { [kTlsSocket]?: TLSSocket })[kTlsSocket] = socket;
    session.on('stream', (stream: LeanStream, headers: IncomingHttpHeaders) => this.#onStream(stream as unknown as ServerHttp2Stream, headers));
    // LeanSession has the part of ServerHttp2Session that #onSession and #onStream use.
    this.#onSession(session as unknown as CheckedSession);
    if (!session.destroyed) session.start();
  }

  listen(portOrHandle: number | { fd: number }, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      const done = (): void => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#log.error({ err }, 'HBONE listener error'));
        resolve(this.#server.address() as AddressInfo);
      };
      if (typeof portOrHandle === 'number') this.#server.listen(portOrHandle, host, done);
      else this.#server.listen(portOrHandle, done);
    });
  }

  address(): AddressInfo | undefined {
    return (this.#server.address() as AddressInfo | null) ?? undefined;
  }

  refreshCredentials(): void {
    this.#maybeRotate();
  }

  stats(): HboneServerStats {
    return { ...this.#stats, sessionsOpen: this.#sessions.size };
  }

  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        for (const s of this.#sessions) resetSession(s);
      }, opts.timeoutMs ?? SESSION_CLOSE_GRACE_MS);
      timer.unref();
      this.#server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const s of this.#sessions) closeSessionGracefully(s, opts.timeoutMs ?? SESSION_CLOSE_GRACE_MS);
    });
  }

  #maybeRotate(): void {
    const creds = this.#opts.credentials();
    if (creds === undefined || creds === this.#applied) return;
    this.#applied = creds;
    this.#server.setSecureContext({ ...contextOptions(creds), ...TLS_VERSIONS });
    this.#log.info({ identity: creds.identity }, 'HBONE server certificate rotated (new connections)');
  }

  #onSession(session: CheckedSession): void {
    const socket = session.socket as TLSSocket;
    const remote = socket.remoteAddress;
    let reason: string | undefined;
    let code: 'WEFT_ERR_TLS_PEER_UNTRUSTED' | 'WEFT_ERR_TLS_PEER_IDENTITY' = 'WEFT_ERR_TLS_PEER_UNTRUSTED';
    let identity = '';
    const peer = socket.getPeerX509Certificate();
    const now = Date.now();
    const notBefore = peer === undefined ? 0 : Date.parse(peer.validFrom);
    const notAfter = peer === undefined ? 0 : Date.parse(peer.validTo);
    if (peer === undefined) {
      reason = 'no client certificate';
    } else if (!socket.authorized) {
      reason = String(socket.authorizationError);
    } else if (!(now >= notBefore && now <= notAfter)) {
      // A resumed session (TLS 1.3 ticket) carries the first handshake's verification result:
      // OpenSSL does not look at the certificate's dates again (F5 of issue 10).
      reason = `client certificate expired or not yet valid (valid ${peer.validFrom} to ${peer.validTo})${socket.isSessionReused() ? ', session resumed' : ''}`;
    } else {
      const parsed = spiffeIdFromSan(peer.subjectAltName);
      if ('reason' in parsed) {
        code = 'WEFT_ERR_TLS_PEER_IDENTITY';
        reason = parsed.reason;
      } else if (tryParseSpiffeId(parsed.id)?.trustDomain !== this.#trustDomain) {
        // A root shared with another mesh must not let its workloads in as ours (F6 of issue 10).
        code = 'WEFT_ERR_TLS_PEER_IDENTITY';
        reason = `peer ${parsed.id} is not of trust domain ${this.#trustDomain}`;
      } else {
        identity = parsed.id;
      }
    }
    if (reason !== undefined) {
      this.#stats.sessionsRefused++;
      this.#log.warn({ remote, code, reason }, 'HBONE connection refused');
      resetSession(session);
      return;
    }
    const peerInfo: PeerInfo = { identity, streams: 0, idleTimer: undefined, idleMs: this.#opts.sessionIdleTimeoutMs ?? HBONE_SERVER_IDLE_TIMEOUT_MS, notBefore, notAfter };
    session[kPeer] = peerInfo;
    armIdle(session, peerInfo);
    this.#stats.sessionsAccepted++;
    this.#sessions.add(session);
    session.once('close', () => {
      clearTimeout(peerInfo.idleTimer);
      this.#sessions.delete(session);
    });
    // The client's GOAWAY: its open streams finish, then the session goes (also if they never do).
    session.on('goaway', () => closeSessionGracefully(session));
    session.on('error', (err) => this.#log.debug({ remote, peer: identity, err }, 'HBONE session error'));
    session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    this.#log.debug({ remote, peer: identity }, 'HBONE connection accepted');
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    (stream as ServerHttp2Stream & { [kLog]?: Logger })[kLog] = this.#log;
    stream.on('error', onStreamError);
    const peer = (stream.session as CheckedSession | undefined)?.[kPeer];
    if (peer === undefined) {
      // Only sessions that passed #onSession reach here; kept as a guard.
      stream.close(h2.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (peer.streams++ === 0) {
      clearTimeout(peer.idleTimer);
      peer.idleTimer = undefined;
    }
    stream.on('close', onCountedStreamClose);
    const now = Date.now();
    if (now > peer.notAfter || now < peer.notBefore) {
      // The session outlived its client certificate: no new stream, and the session goes.
      this.#log.warn({ peer: peer.identity, code: 'WEFT_ERR_TLS_PEER_UNTRUSTED', reason: 'client certificate expired during the session' }, 'HBONE stream refused');
      stream.close(h2.NGHTTP2_REFUSED_STREAM);
      closeSessionGracefully(stream.session!);
      return;
    }
    const method = headers[':method'];
    const authority = headers[':authority'];
    if (method !== 'CONNECT') {
      this.#reject(stream, 405, peer.identity, `method ${String(method)} is not CONNECT`);
      return;
    }
    const target = headers[':protocol'] === undefined ? parseAuthority(authority) : undefined;
    if (target === undefined) {
      this.#reject(stream, 400, peer.identity, `:authority ${JSON.stringify(authority)} is not ip:port (or extended CONNECT)`);
      return;
    }
    this.#stats.streamsAccepted++;
    const socket = stream.session?.socket;
    const info: HboneStreamInfo = {
      peerIdentity: peer.identity,
      authority: authority!,
      host: target.host,
      port: target.port,
      forwarded: headerValue(headers.forwarded),
      baggage: headerValue(headers.baggage),
      localAddress: socket?.localAddress,
      localPort: socket?.localPort,
      remoteAddress: socket?.remoteAddress,
      remotePort: socket?.remotePort,
    };
    try {
      this.#opts.onStream(stream, info);
    } catch (err) {
      this.#log.error({ peer: peer.identity, authority, err }, 'HBONE stream handler threw');
      if (!stream.headersSent && !stream.destroyed) stream.respond({ ':status': 500 }, { endStream: true });
      else stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    }
  }

  #reject(stream: ServerHttp2Stream, status: number, peer: string, reason: string): void {
    this.#stats.streamsRejected++;
    this.#log.warn({ peer, status, code: 'WEFT_ERR_HBONE_BAD_REQUEST', reason }, 'HBONE request rejected');
    stream.respond({ ':status': status }, { endStream: true });
  }
}

function contextOptions(c: TlsCredentials): { key: string; cert: string; ca: string[] } {
  return { key: c.keyPem, cert: c.certPem + c.chainPem.join(''), ca: c.trustBundle };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

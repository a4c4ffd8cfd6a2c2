/**
 * HBONE connection pool. A new application connection costs a CONNECT stream, not a TLS
 * handshake: connections are keyed by (source identity, destination ip:port, expected server
 * identity) — the last one so that a pod IP reused by another workload never rides a
 * connection verified for the previous owner. Up to 100 streams per connection (then another
 * connection for the same key); idle connections close quickly (pod IPs get reused); keepalive
 * pings find dead peers; after GOAWAY new streams go to a new connection while old ones finish.
 */
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { WeftError, isWeftError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { formatAuthority } from './authority.js';
import { isRetryableStreamError, openConnectStream, openHboneSession } from './client.js';
import type { TlsCredentials } from './settings.js';
import type { HboneImpl } from './impl.js';
import { closeSessionGracefully, resetSession } from './server.js';
import { HBONE_KEEPALIVE_MS, MAX_STREAMS_PER_CONNECTION, POOL_IDLE_TIMEOUT_MS, TLS_HANDSHAKE_TIMEOUT_MS, UPSTREAM_CONNECT_TIMEOUT_MS } from '../config.js';

/**
 * Makes the TCP socket for a connection (connected or connecting). The agent's opens it inside
 * the source pod's network namespace and marks it; the default is a plain connect.
 */
export type SocketFactory = (host: string, port: number, sourceIdentity?: string) => Socket;

export interface HbonePoolOptions {
  /** The source workload's certificate (e.g. `(id) => identityManager.get(id)`). */
  credentials: (sourceIdentity: string) => Promise<TlsCredentials>;
  createSocket?: SocketFactory;
  logger?: Logger;
  /** Close a connection this long after its last stream ended (default 10 s). */
  idleTimeoutMs?: number;
  /** HTTP/2 PING interval; a ping unanswered by the next one destroys the connection (default 30 s). */
  keepaliveIntervalMs?: number;
  handshakeTimeoutMs?: number;
  /** Streams per connection before another connection is opened (default 100). */
  maxStreamsPerConnection?: number;
  /** TCP connect deadline (default agent/config.ts). */
  connectTimeoutMs?: number;
  /** HTTP/2 implementation (default: the process default, agent/tunnel/impl.ts). */
  impl?: HboneImpl;
}

export interface HboneConnectRequest {
  sourceIdentity: string;
  /** The destination pod (or waypoint) and its HBONE port. */
  destination: { host: string; port: number };
  /** The SPIFFE ID discovery says the destination has; anything else is refused. */
  expectedIdentity: string;
  /** Original destination `ip:port`. */
  authority: string;
  /** Extra request headers (`forwarded`, `baggage`). */
  headers?: OutgoingHttpHeaders;
}

export interface HbonePoolStats {
  /** Connections whose handshake completed, ever. */
  connectionsOpened: number;
  /** Connections not yet closed (usable or draining). */
  connectionsOpen: number;
  /** Connections that take new streams (not draining after GOAWAY or idle). */
  connectionsUsable: number;
  /** Connection attempts that failed (TCP, TLS, identity). */
  connectionsFailed: number;
  streamsOpened: number;
  streamsActive: number;
  streamsFailed: number;
}

// Connection states.
const CONNECTING = 0;
const READY = 1;
/** GOAWAY received or closing: no new streams, existing ones finish. */
const DRAINING = 2;
const CLOSED = 3;

const kConnection = Symbol('weft.hboneConnection');
type PooledStream = ClientHttp2Stream & { [kConnection]?: PooledConnection };

/** Shared by every stream (no closure per stream). */
function onPooledStreamClose(this: PooledStream): void {
  const conn = this[kConnection];
  if (conn === undefined) return;
  this[kConnection] = undefined;
  conn.pool.streamEnded();
  conn.release();
}

class PooledConnection {
  readonly key: string;
  /** The destination's address and the identity it must present (for closeGone). */
  readonly host: string;
  readonly expectedIdentity: string;
  /** The TCP socket under the session (reset on closeGone). */
  socket: Socket | undefined;
  state = CONNECTING;
  /** Streams opened or being opened on this connection. */
  reserved = 0;
  session: ClientHttp2Session | undefined;
  ready: Promise<ClientHttp2Session>;
  readonly pool: HbonePool;
  #idleTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #pingOutstanding = false;

  constructor(pool: HbonePool, key: string, req: HboneConnectRequest, ready: (conn: PooledConnection) => Promise<ClientHttp2Session>) {
    this.pool = pool;
    this.key = key;
    this.host = req.destination.host;
    this.expectedIdentity = req.expectedIdentity;
    this.ready = ready(this);
  }

  capacity(max: number): number {
    const peer = this.session?.remoteSettings.maxConcurrentStreams;
    return peer === undefined ? max : Math.min(max, peer);
  }

  reserve(): void {
    this.reserved++;
    if (this.#idleTimer !== undefined) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
  }

  release(): void {
    this.reserved--;
    if (this.reserved === 0 && this.state === READY) {
      this.#idleTimer = setTimeout(() => this.#onIdle(), this.pool.idleTimeoutMs);
      this.#idleTimer.unref();
    } else if (this.reserved === 0 && this.state === DRAINING && this.session !== undefined) {
      closeSessionGracefully(this.session);
    }
  }

  startKeepalive(intervalMs: number): void {
    this.#pingTimer = setInterval(() => {
      const s = this.session;
      if (s === undefined || s.destroyed) return;
      if (this.#pingOutstanding) {
        s.destroy(new WeftError('WEFT_ERR_HBONE_SESSION', `no PING answer within ${intervalMs} ms`));
        return;
      }
      this.#pingOutstanding = true;
      s.ping((err) => {
        if (err === null) this.#pingOutstanding = false;
      });
    }, intervalMs);
    this.#pingTimer.unref();
  }

  /** No new streams; close when the last one ends. */
  drain(): void {
    if (this.state >= DRAINING) return;
    this.state = DRAINING;
    this.pool.forget(this);
    if (this.reserved === 0 && this.session !== undefined) closeSessionGracefully(this.session);
  }

  closed(): void {
    this.state = CLOSED;
    clearTimeout(this.#idleTimer);
    clearInterval(this.#pingTimer);
    this.pool.forget(this);
  }

  #onIdle(): void {
    this.#idleTimer = undefined;
    if (this.reserved !== 0 || this.state !== READY) return;
    this.pool.log.debug({ key: this.key }, 'closing idle HBONE connection');
    this.drain();
  }
}

export class HbonePool {
  readonly idleTimeoutMs: number;
  readonly log: Logger;
  readonly #credentials: (sourceIdentity: string) => Promise<TlsCredentials>;
  readonly #createSocket: SocketFactory;
  readonly #keepaliveMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #maxStreams: number;
  readonly #connectTimeoutMs: number;
  readonly #impl: HboneImpl | undefined;
  /** Usable connections per key (not draining). */
  readonly #byKey = new Map<string, PooledConnection[]>();
  /** Every connection not yet closed (for stats and close()). */
  readonly #all = new Set<PooledConnection>();
  #stats = { connectionsOpened: 0, connectionsFailed: 0, streamsOpened: 0, streamsActive: 0, streamsFailed: 0 };
  #closed = false;

  constructor(opts: HbonePoolOptions) {
    this.#credentials = opts.credentials;
    this.#createSocket = opts.createSocket ?? ((host, port) => netConnect({ host, port }));
    this.log = (opts.logger ?? silentLogger).child({ component: 'hbone-pool' });
    this.idleTimeoutMs = opts.idleTimeoutMs ?? POOL_IDLE_TIMEOUT_MS;
    this.#keepaliveMs = opts.keepaliveIntervalMs ?? HBONE_KEEPALIVE_MS;
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS;
    this.#maxStreams = opts.maxStreamsPerConnection ?? MAX_STREAMS_PER_CONNECTION;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? UPSTREAM_CONNECT_TIMEOUT_MS;
    this.#impl = opts.impl;
  }

  /**
   * Opens a CONNECT stream to `req.destination` and resolves with it after the server's 200.
   * The caller owns the stream (a Duplex): attach an 'error' listener, pipe, end it.
   */
  async connect(req: HboneConnectRequest): Promise<ClientHttp2Stream> {
    if (this.#closed) throw new WeftError('WEFT_ERR_HBONE_SESSION', 'HBONE pool is closed');
    const key = `${req.sourceIdentity}\u0000${formatAuthority(req.destination.host, req.destination.port)}\u0000${req.expectedIdentity}`;
    // One retry, only for streams the server never saw (GOAWAY race, REFUSED_STREAM).
    for (let attempt = 0; ; attempt++) {
      const conn = this.#pick(key) ?? this.#open(key, req);
      conn.reserve();
      let stream: PooledStream;
      try {
        const session = await conn.ready;
        stream = (await openConnectStream(session, req.authority, req.headers)) as PooledStream;
      } catch (err) {
        conn.release();
        if (attempt === 0 && isRetryableStreamError(err)) {
          conn.drain();
          continue;
        }
        this.#stats.streamsFailed++;
        throw err;
      }
      this.#stats.streamsOpened++;
      this.#stats.streamsActive++;
      stream[kConnection] = conn;
      // 'on', not 'once': 'close' comes once, and once() would allocate a wrapper per stream.
      stream.on('close', onPooledStreamClose);
      return stream;
    }
  }

  stats(): HbonePoolStats {
    let usable = 0;
    for (const list of this.#byKey.values()) usable += list.length;
    return { ...this.#stats, connectionsOpen: this.#all.size, connectionsUsable: usable };
  }

  /** GOAWAY on every connection: open streams finish, no new ones are accepted. */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#all]) c.drain();
  }

  /**
   * Resets at once every connection to a destination discovery no longer has (a deleted pod,
   * or its IP now owned by another identity). Left alone such a connection hangs until a PING
   * goes unanswered, and a graceful close leaves its socket in FIN_WAIT1, which keeps the dead
   * pod's namespace alive for minutes. Returns how many were closed.
   */
  closeGone(stillThere: (host: string, expectedIdentity: string) => boolean): number {
    let closed = 0;
    for (const c of [...this.#all]) {
      if (c.state === CLOSED || stillThere(c.host, c.expectedIdentity)) continue;
      closed++;
      this.log.debug({ key: c.key }, 'destination left the model: HBONE connection reset');
      c.drain();
      if (c.session !== undefined) resetSession(c.session);
      else if (c.socket !== undefined && !c.socket.destroyed) c.socket.destroy();
    }
    return closed;
  }

  /** Tears down every connection and its streams now. */
  destroy(): void {
    this.#closed = true;
    for (const c of [...this.#all]) c.session?.destroy();
  }

  /** @internal An opened stream closed. */
  streamEnded(): void {
    this.#stats.streamsActive--;
  }

  /** @internal Removes a draining or closed connection from the usable set. */
  forget(conn: PooledConnection): void {
    const list = this.#byKey.get(conn.key);
    if (list !== undefined) {
      const i = list.indexOf(conn);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#byKey.delete(conn.key);
    }
    if (conn.state === CLOSED) this.#all.delete(conn);
  }

  #pick(key: string): PooledConnection | undefined {
    const list = this.#byKey.get(key);
    if (list === undefined) return undefined;
    for (const c of list) {
      if (c.state <= READY && c.reserved < c.capacity(this.#maxStreams)) return c;
    }
    return undefined;
  }

  #open(key: string, req: HboneConnectRequest): PooledConnection {
    const conn = new PooledConnection(this, key, req, (c) => this.#establish(c, req));
    let list = this.#byKey.get(key);
    if (list === undefined) this.#byKey.set(key, (list = []));
    list.push(conn);
    this.#all.add(conn);
    conn.ready.catch((err: unknown) => {
      this.#stats.connectionsFailed++;
      conn.closed();
      this.log.warn(
        {
          source: req.sourceIdentity,
          destination: formatAuthority(req.destination.host, req.destination.port),
          expectedIdentity: req.expectedIdentity,
          code: isWeftError(err) ? err.code : undefined,
          reason: err instanceof Error ? err.message : String(err),
        },
        'HBONE connection refused',
      );
    });
    return conn;
  }

  async #establish(conn: PooledConnection, req: HboneConnectRequest): Promise<ClientHttp2Session> {
    const { host, port } = req.destination;
    const credentials = await this.#credentials(req.sourceIdentity);
    let socket: Socket;
    try {
      socket = this.#createSocket(host, port, req.sourceIdentity);
    } catch (err) {
      throw new WeftError('WEFT_ERR_HBONE_CONNECT', `cannot create a socket to ${formatAuthority(host, port)}: ${(err as Error).message}`, { cause: err });
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, HBONE_KEEPALIVE_MS);
    conn.socket = socket;
    if (socket.connecting) {
      const connectTimeoutMs = this.#connectTimeoutMs;
      await new Promise<void>((resolve, reject) => {
        // A peer that drops SYNs (a deleted pod) must not hold the connection for the kernel's ~2 min.
        const timer = setTimeout(() => {
          socket.destroy(new WeftError('WEFT_ERR_CONNECT_TIMEOUT', `TCP connect to ${formatAuthority(host, port)} took more than ${connectTimeoutMs} ms`));
        }, connectTimeoutMs);
        timer.unref();
        const onError = (err: Error): void => {
          clearTimeout(timer);
          socket.off('connect', onConnect);
          reject(isWeftError(err) ? err : new WeftError('WEFT_ERR_HBONE_CONNECT', `TCP connect to ${formatAuthority(host, port)} failed: ${err.message}`, { cause: err }));
        };
        const onConnect = (): void => {
          clearTimeout(timer);
          socket.off('error', onError);
          resolve();
        };
        socket.once('error', onError);
        socket.once('connect', onConnect);
      });
    }
    const session = await openHboneSession({ socket, credentials, expectedIdentity: req.expectedIdentity, host, port, handshakeTimeoutMs: this.#handshakeTimeoutMs, ...(this.#impl === undefined ? {} : { impl: this.#impl }) });
    conn.session = session;
    conn.state = this.#closed ? DRAINING : READY;
    this.#stats.connectionsOpened++;
    session.on('goaway', () => conn.drain());
    session.on('error', (err) => this.log.debug({ key: conn.key, err }, 'HBONE session error'));
    session.once('close', () => {
      conn.closed();
      if (!socket.destroyed) socket.destroy();
    });
    conn.startKeepalive(this.#keepaliveMs);
    if (this.#closed) conn.drain();
    return session;
  }
}

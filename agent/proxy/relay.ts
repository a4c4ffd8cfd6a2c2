/**
 * Copies bytes both ways between two duplexes (TCP sockets, or an HBONE CONNECT stream and a
 * socket) until both directions are done. A FIN travels as a FIN (END_STREAM on HTTP/2; sockets
 * must be allowHalfOpen), an abort on one side aborts the other (a TCP reset becomes an
 * RST_STREAM and back, in the spirit of RFC 9113 section 8.5), and `done` is called
 * exactly once, after both sides closed, with the byte counts.
 *
 * Memory: a relay is one object per connection. Its listeners are module-level functions that
 * find the relay through a symbol on the side they are called on (`this`), and `on` is used
 * where `once` would allocate a wrapper and a state object per call: an idle proxied connection
 * holds no closure of its own here.
 */
import net from 'node:net';
import tls from 'node:tls';
import { constants as h2constants, type Http2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { dupFd, setLingerZero, socketFd } from '../../native/index.js';

export interface RelayResult {
  /** Bytes that came from the downstream (client side) and went upstream. */
  bytesFromDownstream: number;
  /** Bytes that came from the upstream and went to the downstream. */
  bytesFromUpstream: number;
  error: Error | undefined;
}

export type RelayDone = (result: RelayResult) => void;
/** An object told when the relay is done (saves a closure per connection). */
export interface RelayOwner {
  relayDone(result: RelayResult): void;
}

function isHttp2Stream(d: Duplex): d is Http2Stream {
  return 'rstCode' in d;
}

const STREAM_ABORTED = new Error('connection aborted by the other side');
const CLOSED_UNDER = new Error('the other side closed before this side had ended');

/** Aborts a side so that its peer sees a reset, not a clean end. */
export function abort(d: Duplex): void {
  if (d.destroyed) return;
  // A TLS socket's handle is not a TCP handle, so resetAndDestroy would throw; closing the TLS
  // connection is what its peer can see.
  if (d instanceof tls.TLSSocket) d.destroy(STREAM_ABORTED);
  else if (d instanceof net.Socket) resetSocket(d);
  // Http2Stream.close(CONNECT_ERROR) would first send END_STREAM, which the peer reads as a
  // clean FIN; destroy(err) sends RST_STREAM alone (code INTERNAL_ERROR), a real abort.
  else if (isHttp2Stream(d)) d.destroy(STREAM_ABORTED);
  else d.destroy();
}

/**
 * resetAndDestroy fails (an 'error' event, the socket left open) once the socket was ended:
 * libuv refuses to reset a socket being shut down. The relay ends a side when its peer sent a
 * FIN, so an abort afterwards sets SO_LINGER 0 itself and closes.
 */
export function resetSocket(s: net.Socket): void {
  if (!s.writableEnded) {
    s.resetAndDestroy();
    return;
  }
  try {
    setLingerZero(socketFd(s));
  } catch {
    // No descriptor any more: nothing to reset, destroy() below is all that is left.
  }
  s.destroy();
}

/**
 * Bytes written ahead into the destination before the source is paused. Above the streams'
 * 16 KiB high-water mark (which `pipe()` pauses at): a 64 KiB socket read then no longer stops and
 * restarts reading on every chunk (a readStop/readStart pair of epoll_ctl calls each time).
 */
const WRITE_AHEAD_BYTES = 256 * 1024;

const kRelay = Symbol('weft.relay');
const kEarly = Symbol('weft.earlyReads');
const kSmallReads = Symbol('weft.smallReads');
type Side = Duplex & { [kRelay]?: Relay; [kEarly]?: Buffer[] | undefined; [kSmallReads]?: number };

// Relay.flags bits, per side as destination (D = downstream, U = upstream).
/** The side is corked until the next setImmediate (see onSideData). */
const CORKED_D = 1;
const CORKED_U = 2;
/** The side's peer is paused until this side drains. */
const PAUSED_FOR_D = 4;
const PAUSED_FOR_U = 8;
/** Whether data from the side is coalesced (it is an HTTP/2 stream). */
const COALESCE_FROM_D = 16;
const COALESCE_FROM_U = 32;
/**
 * Whether the side, as destination, keeps the chunks it is given past write() (an HTTP/2 stream
 * holds them until nghttp2 has framed them): bytes read into a reused buffer are copied for it.
 */
const HOLDS_D = 64;
const HOLDS_U = 128;

class Relay {
  readonly downstream: Side;
  readonly upstream: Side;
  readonly done: RelayDone | RelayOwner;
  closed = 0;
  flags = 0;
  error: Error | undefined;

  constructor(downstream: Duplex, upstream: Duplex, done: RelayDone | RelayOwner) {
    this.downstream = downstream;
    this.upstream = upstream;
    this.done = done;
    if (isHttp2Stream(downstream)) this.flags |= COALESCE_FROM_D | HOLDS_D;
    if (isHttp2Stream(upstream)) this.flags |= COALESCE_FROM_U | HOLDS_U;
  }

  fail(side: Duplex, err: Error): void {
    this.error ??= err;
    abort(side === this.downstream ? this.upstream : this.downstream);
    if (!side.destroyed) side.destroy();
  }

  sideClosed(): void {
    if (++this.closed !== 2) return;
    const result = { ...relayByteCounts(this.downstream, this.upstream), error: this.error };
    if (typeof this.done === 'function') this.done(result);
    else this.done.relayDone(result);
  }
}

/**
 * Bytes each way so far, from whichever side is a TCP socket (HTTP/2 streams do not count
 * bytes): the relay's result at the end, and the live count of an open connection (telemetry
 * reads it at scrape time; the same counters, so the total only grows when the relay ends).
 */
export function relayByteCounts(downstream: Duplex, upstream: Duplex): { bytesFromDownstream: number; bytesFromUpstream: number } {
  if (downstream instanceof net.Socket) return { bytesFromDownstream: downstream.bytesRead, bytesFromUpstream: downstream.bytesWritten };
  if (upstream instanceof net.Socket) return { bytesFromDownstream: upstream.bytesWritten, bytesFromUpstream: upstream.bytesRead };
  return { bytesFromDownstream: 0, bytesFromUpstream: 0 };
}

export function relay(downstream: Duplex, upstream: Duplex, done: RelayDone | RelayOwner): void {
  const r = new Relay(downstream, upstream, done);
  start(r.downstream, r);
  start(r.upstream, r);
}

function start(side: Side, r: Relay): void {
  side[kRelay] = r;
  side.on('error', onSideError);
  side.on('close', onSideClose);
  side.on('end', onSideEnd);
  side.on('data', onSideData);
  // A socket reading into a reused buffer (REUSED_READS) delivers no 'data': what it read before
  // the relay started was kept aside, and goes first.
  const early = side[kEarly];
  if (early !== undefined) {
    side[kEarly] = undefined;
    for (const chunk of early) onSideData.call(side, chunk);
    if ((r.flags & (side === r.downstream ? PAUSED_FOR_U : PAUSED_FOR_D)) === 0) side.resume();
  }
}

function peerOf(r: Relay, side: Side): Side {
  return side === r.downstream ? r.upstream : r.downstream;
}

function onSideError(this: Side, err: Error): void {
  this[kRelay]!.fail(this, err);
}

/**
 * One direction of the relay: what `src.pipe(dst)` does (FIN as end(), backpressure, stop when
 * `dst` closes), plus coalescing. An HTTP/2 stream delivers a DATA frame's payload in pieces cut
 * at the TLS record boundaries (a 9-byte piece, then 16,375 bytes, ...); written one by one, each
 * piece is a syscall and a tiny TCP segment. The destination is corked while a burst of chunks
 * from a stream arrives and uncorked once the event loop has handled the read that brought them
 * (setImmediate: nextTick would run between the pieces, each of which Node delivers in a callback
 * of its own): one writev per burst. A socket delivers one chunk per read, so data from a socket
 * is written at once (no cork, no immediate).
 */
function onSideData(this: Side, chunk: Buffer): void {
  const r = this[kRelay]!;
  const toUp = this === r.downstream;
  const dst = toUp ? r.upstream : r.downstream;
  if ((r.flags & (toUp ? COALESCE_FROM_D : COALESCE_FROM_U)) !== 0) {
    const corked = toUp ? CORKED_U : CORKED_D;
    if ((r.flags & corked) === 0) {
      r.flags |= corked;
      dst.cork();
      setImmediate(uncorkSide, dst);
    }
  }
  if (!dst.write(chunk) && dst.writableLength >= WRITE_AHEAD_BYTES) {
    const paused = toUp ? PAUSED_FOR_U : PAUSED_FOR_D;
    if ((r.flags & paused) === 0) {
      r.flags |= paused;
      dst.on('drain', onSideDrain);
    }
    this.pause();
  }
}

/**
 * Reads into a reused buffer (net.Socket's `onread`) for the sockets Weft makes itself (the app
 * side of inbound, the plain TCP path): no ArrayBuffer per read. A buffer is reused only while no
 * write still holds it: a destination that keeps chunks (an HTTP/2 stream) or already has bytes
 * queued gets a copy of exactly the bytes read (small ones come from Node's buffer pool), and
 * a socket write that did not complete at once (the kernel took part of it; libuv writes the rest
 * from the same memory later) makes the socket read into a fresh buffer from then on (swap).
 * Node calls `callback` with the socket as `this` and `buffer` right after it, without one: the
 * callback leaves the next buffer in `handoff`, so no closure or buffer is kept per socket
 * beyond the buffer itself (small until reads fill it, then READ_BUFFER_BYTES).
 */
export const REUSED_READS: net.OnReadOpts = {
  // Node accepts undefined from the generator (the socket keeps its buffer); the typings do not.
  buffer: nextReadBuffer as () => Uint8Array,
  callback: onReusedRead as (bytesWritten: number, buf: Uint8Array) => boolean,
};

/**
 * Not used by the agent yet (its accepted sockets' peer is chosen after the accept; see
 * docs/architecture.md); bench/tunnel-throughput.ts uses it for the plain TCP relay (and, with
 * its own `onread`, for the aead mode's sealed sockets).
 * An accepted socket (from a listener with pauseOnConnect, not read yet) as one that reads into
 * a reused buffer: net.Server takes no `onread`, so the descriptor is duplicated into a socket
 * made with it and the accepted one is closed (no FIN: the duplicate keeps the connection; the
 * accepted handle never read, so it was never in epoll). If the descriptor cannot be
 * duplicated (EMFILE), the accepted socket is used as it is, reading the default way.
 */
export function adoptAccepted(conn: net.Socket, onread: net.OnReadOpts = REUSED_READS): net.Socket {
  let fd: number;
  try {
    fd = dupFd(socketFd(conn));
  } catch {
    conn.resume();
    return conn;
  }
  conn.destroy();
  const options: net.SocketConstructorOpts & { onread: net.OnReadOpts } = { fd, allowHalfOpen: true, readable: true, writable: true, onread };
  return new net.Socket(options);
}

/**
 * A half-open-capable socket on `fd` (made by createTcpSocket) that will be relayed to `peer`:
 * it reads into a reused buffer when the peer is a TCP socket, and the default way (a new
 * ArrayBuffer per read) when the peer is an HTTP/2 stream, which holds every chunk until it is
 * framed: there a reused buffer saves nothing and measured lower throughput (bench/README.md).
 */
export function relaySocket(fd: number, peer: Duplex): net.Socket {
  const options: net.SocketConstructorOpts & { onread?: net.OnReadOpts } = { fd, allowHalfOpen: true, readable: true, writable: true };
  // net.Socket's constructor takes `onread` as connect() does (Node >= 12.2); the typings list it for connect only.
  if (!isHttp2Stream(peer)) options.onread = REUSED_READS;
  return new net.Socket(options);
}

/** A new socket's first buffer, and the size reads shrink back to. */
const SMALL_READ_BYTES = 2 * 1024;
const READ_BUFFER_BYTES = 64 * 1024;
const SHRINK_AFTER_SMALL_READS = 256;
/** The buffer the next read of the socket just served goes into: undefined keeps its buffer; null: not called from a read. */
let handoff: Buffer | undefined | null = null;

function nextReadBuffer(): Buffer | undefined {
  const next = handoff;
  handoff = null;
  return next === null ? Buffer.allocUnsafe(SMALL_READ_BYTES) : next;
}

function onReusedRead(this: Side, nread: number, buf: Buffer): boolean {
  const r = this[kRelay];
  const chunk = buf.subarray(0, nread);
  // Grow when a read filled the buffer; shrink back after SHRINK_AFTER_SMALL_READS small reads in
  // a row (an idle connection keeps 2 KiB; a request/response flow that sometimes reads two
  // answers at once must not swing between sizes: that allocated a 64 KiB buffer every few reads).
  let next: Buffer | undefined;
  if (nread === buf.length && buf.length < READ_BUFFER_BYTES) {
    next = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    this[kSmallReads] = 0;
  } else if (buf.length > SMALL_READ_BYTES) {
    const small = nread <= SMALL_READ_BYTES / 2 ? (this[kSmallReads] ?? 0) + 1 : 0;
    this[kSmallReads] = small;
    if (small >= SHRINK_AFTER_SMALL_READS) {
      next = Buffer.allocUnsafe(SMALL_READ_BYTES);
      this[kSmallReads] = 0;
    }
  }
  if (r === undefined) {
    const early = (this[kEarly] ??= []);
    early.push(Buffer.from(chunk));
    handoff = next;
    // Bounded like a socket nobody reads (its high-water mark): the relay resumes it.
    let bytes = 0;
    for (const c of early) bytes += c.length;
    return bytes < WRITE_AHEAD_BYTES;
  }
  const toUp = this === r.downstream;
  const dst = toUp ? r.upstream : r.downstream;
  if (dst.destroyed || dst.writableEnded) {
    handoff = next;
    return false;
  }
  if ((r.flags & (toUp ? HOLDS_U : HOLDS_D)) !== 0 || dst.writableLength > 0 || dst.writableCorked > 0) {
    // The write will hold the bytes: a small read is copied (from Node's pool), a large one is
    // handed over as it is and the socket reads on into a fresh buffer (no copy of 64 KiB).
    if (nread <= SMALL_READ_BYTES) {
      handoff = next;
      onSideData.call(this, Buffer.from(chunk));
    } else {
      handoff = next ?? Buffer.allocUnsafeSlow(buf.length);
      onSideData.call(this, chunk);
    }
    return true;
  }
  onSideData.call(this, chunk);
  // Still queued: libuv writes the rest from this memory later.
  handoff = dst.writableLength > 0 && next === undefined ? Buffer.allocUnsafeSlow(buf.length) : next;
  return true;
}

function uncorkSide(side: Side): void {
  const r = side[kRelay]!;
  r.flags &= side === r.upstream ? ~CORKED_U : ~CORKED_D;
  side.uncork();
}

/** `this` drained: resume its peer, paused in onSideData. */
function onSideDrain(this: Side): void {
  const r = this[kRelay]!;
  r.flags &= this === r.upstream ? ~PAUSED_FOR_U : ~PAUSED_FOR_D;
  this.off('drain', onSideDrain);
  if (!this.destroyed) peerOf(r, this).resume();
}

function onSideEnd(this: Side): void {
  peerOf(this[kRelay]!, this).end();
}

function onSideClose(this: Side): void {
  const r = this[kRelay]!;
  const peer = peerOf(r, this);
  // An HTTP/2 stream reset by the peer closes without 'error' when the code is CANCEL/NO_ERROR;
  // treat any non-zero reset code as an abort of the other side.
  if (isHttp2Stream(this) && this.rstCode && this.rstCode !== h2constants.NGHTTP2_NO_ERROR) {
    r.error ??= new Error(`stream reset with code ${this.rstCode}`);
    abort(peer);
  } else if (!peer.destroyed && !peer.readableEnded) {
    // A side that closes cleanly was ended by us, which happens only after its peer's end. So
    // a peer still reading lost its way out: this side was torn down (an HBONE session that
    // ended under its streams, whose streams Node closes with code 0). Left alone, the peer
    // would stay open, paused, for ever (F2 of issue 10).
    r.error ??= CLOSED_UNDER;
    abort(peer);
  }
  r.sideClosed();
  // Nothing more can be written here: stop copying from the peer.
  peer.off('data', onSideData);
  peer.off('end', onSideEnd);
  peer.pause();
}

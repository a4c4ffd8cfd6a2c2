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
import { setLingerZero, socketFd } from '../../native/index.js';

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
type Side = Duplex & { [kRelay]?: Relay };

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
    if (isHttp2Stream(downstream)) this.flags |= COALESCE_FROM_D;
    if (isHttp2Stream(upstream)) this.flags |= COALESCE_FROM_U;
  }

  fail(side: Duplex, err: Error): void {
    this.error ??= err;
    abort(side === this.downstream ? this.upstream : this.downstream);
    if (!side.destroyed) side.destroy();
  }

  sideClosed(): void {
    if (++this.closed !== 2) return;
    // Byte counts come from whichever side is a TCP socket (HTTP/2 streams do not count bytes).
    const d = this.downstream;
    const u = this.upstream;
    let fromDown = 0;
    let fromUp = 0;
    if (d instanceof net.Socket) {
      fromDown = d.bytesRead;
      fromUp = d.bytesWritten;
    } else if (u instanceof net.Socket) {
      fromDown = u.bytesWritten;
      fromUp = u.bytesRead;
    }
    const result = { bytesFromDownstream: fromDown, bytesFromUpstream: fromUp, error: this.error };
    if (typeof this.done === 'function') this.done(result);
    else this.done.relayDone(result);
  }
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

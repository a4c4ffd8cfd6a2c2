/**
 * Copies bytes both ways between two duplexes (TCP sockets, or an HBONE CONNECT stream and a
 * socket) until both directions are done. A FIN travels as a FIN (END_STREAM on HTTP/2; sockets
 * must be allowHalfOpen), an abort on one side aborts the other (a TCP reset becomes an
 * RST_STREAM and back, in the spirit of RFC 9113 section 8.5), and `done` is called
 * exactly once, after both sides closed, with the byte counts.
 */
import net from 'node:net';
import { constants as h2constants, type Http2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';

export interface RelayResult {
  /** Bytes that came from the downstream (client side) and went upstream. */
  bytesFromDownstream: number;
  /** Bytes that came from the upstream and went to the downstream. */
  bytesFromUpstream: number;
  error: Error | undefined;
}

export type RelayDone = (result: RelayResult) => void;

function isHttp2Stream(d: Duplex): d is Http2Stream {
  return 'rstCode' in d;
}

const STREAM_ABORTED = new Error('connection aborted by the other side');

/** Aborts a side so that its peer sees a reset, not a clean end. */
export function abort(d: Duplex): void {
  if (d.destroyed) return;
  if (d instanceof net.Socket) d.resetAndDestroy();
  // Http2Stream.close(CONNECT_ERROR) would first send END_STREAM, which the peer reads as a
  // clean FIN; destroy(err) sends RST_STREAM alone (code INTERNAL_ERROR), a real abort.
  else if (isHttp2Stream(d)) d.destroy(STREAM_ABORTED);
  else d.destroy();
}

class Relay {
  readonly downstream: Duplex;
  readonly upstream: Duplex;
  readonly done: RelayDone;
  closed = 0;
  error: Error | undefined;

  constructor(downstream: Duplex, upstream: Duplex, done: RelayDone) {
    this.downstream = downstream;
    this.upstream = upstream;
    this.done = done;
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
    this.done({ bytesFromDownstream: fromDown, bytesFromUpstream: fromUp, error: this.error });
  }
}

export function relay(downstream: Duplex, upstream: Duplex, done: RelayDone): void {
  const r = new Relay(downstream, upstream, done);
  downstream.on('error', (err: Error) => r.fail(downstream, err));
  upstream.on('error', (err: Error) => r.fail(upstream, err));
  // An HTTP/2 stream reset by the peer closes without 'error' when the code is CANCEL/NO_ERROR;
  // treat any non-zero reset code as an abort of the other side.
  for (const side of [downstream, upstream]) {
    side.on('close', () => {
      if (isHttp2Stream(side) && side.rstCode && side.rstCode !== h2constants.NGHTTP2_NO_ERROR) {
        r.error ??= new Error(`stream reset with code ${side.rstCode}`);
        abort(side === downstream ? upstream : downstream);
      }
      r.sideClosed();
    });
  }
  new Pump(downstream, upstream).start();
  new Pump(upstream, downstream).start();
}

/**
 * Bytes written ahead into the destination before the source is paused. Above the streams'
 * 16 KiB high-water mark (which `pipe()` pauses at): a 64 KiB socket read then no longer stops and
 * restarts reading on every chunk (a readStop/readStart pair of epoll_ctl calls each time).
 */
const WRITE_AHEAD_BYTES = 256 * 1024;

/**
 * One direction of a relay: what `src.pipe(dst)` does (FIN as end(), backpressure, stop when
 * `dst` closes), plus coalescing. An HTTP/2 stream delivers a DATA frame's payload in pieces cut
 * at the TLS record boundaries (a 9-byte piece, then 16,375 bytes, ...); written one by one, each
 * piece is a syscall and a tiny TCP segment. The destination is corked while a burst of chunks
 * arrives and uncorked once the event loop has handled the read that brought them (setImmediate:
 * nextTick would run between the pieces, each of which Node delivers in a callback of its own):
 * one writev per burst.
 */
class Pump {
  readonly src: Duplex;
  readonly dst: Duplex;
  corked = false;
  readonly onData = (chunk: Buffer): void => {
    const dst = this.dst;
    if (!this.corked) {
      this.corked = true;
      dst.cork();
      setImmediate(uncorkPump, this);
    }
    if (!dst.write(chunk) && dst.writableLength >= WRITE_AHEAD_BYTES) {
      this.src.pause();
      dst.once('drain', this.onDrain);
    }
  };
  readonly onDrain = (): void => {
    if (!this.dst.destroyed) this.src.resume();
  };
  readonly onEnd = (): void => {
    this.dst.end();
  };
  readonly onDstClose = (): void => {
    this.src.off('data', this.onData);
    this.src.off('end', this.onEnd);
    this.src.pause();
  };

  constructor(src: Duplex, dst: Duplex) {
    this.src = src;
    this.dst = dst;
  }

  start(): void {
    this.src.on('data', this.onData);
    this.src.once('end', this.onEnd);
    this.dst.once('close', this.onDstClose);
  }
}

function uncorkPump(p: Pump): void {
  p.corked = false;
  p.dst.uncork();
}

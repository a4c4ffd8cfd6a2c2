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
  downstream.pipe(upstream);
  upstream.pipe(downstream);
}

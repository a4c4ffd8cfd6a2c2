/**
 * One CONNECT stream of a lean HTTP/2 session: a Duplex with the part of node:http2's
 * Http2Stream that Weft's proxy and pool use (`rstCode`, `close(code)`, `respond()`,
 * `headersSent`, `session`, the 'response' event, destroy(err) as RST_STREAM INTERNAL_ERROR).
 * Flow control is tied to Node's stream backpressure: received bytes are credited back to the
 * peer (WINDOW_UPDATE) only once the reader has taken them (push() returned true, or _read).
 */
import { Duplex } from 'node:stream';
import type { OutgoingHttpHeaders } from 'node:http2';
import { CANCEL, INTERNAL_ERROR, NO_ERROR } from './constants.js';
import type { LeanSession } from './session.js';

export class LeanStream extends Duplex {
  readonly id: number;
  readonly #session: LeanSession;
  /** RST_STREAM code sent or received; undefined while the stream was not reset. */
  rstCode: number | undefined = undefined;
  /** Server side: whether respond() ran. */
  headersSent = false;
  /** Client side: whether the response HEADERS came. */
  responded = false;
  /** @internal Flow control: what the peer may still send, what we may still send. */
  recvWindow: number;
  sendWindow: number;
  /** @internal Bytes taken by the reader and not yet credited back; bytes still held by a full reader. */
  unacked = 0;
  held = 0;
  /** @internal END_STREAM sent / received; RST_STREAM sent or received. */
  localEnded = false;
  remoteEnded = false;
  reset = false;
  /** @internal Writes waiting for window: chunks (consumed from `outOffset`), then the callback. */
  outQueue: Buffer[] = [];
  outOffset = 0;
  outCallback: ((err?: Error | null) => void) | undefined = undefined;
  /** @internal END_STREAM to send once the queue is empty. */
  endPending: ((err?: Error | null) => void) | undefined = undefined;

  constructor(session: LeanSession, id: number, recvWindow: number, sendWindow: number) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.#session = session;
    this.id = id;
    this.recvWindow = recvWindow;
    this.sendWindow = sendWindow;
  }

  /** The session (node:http2's `stream.session`): socket, close(), destroyed, remoteSettings. */
  get session(): LeanSession {
    return this.#session;
  }

  /** Server side: the response HEADERS; `endStream` ends the stream with them. */
  respond(headers: OutgoingHttpHeaders, opts: { endStream?: boolean } = {}): void {
    if (this.headersSent || this.destroyed || this.reset) return;
    this.headersSent = true;
    this.#session.sendResponse(this, headers, opts.endStream === true);
  }

  /** RST_STREAM with `code` (default NO_ERROR), then closes without an 'error'. */
  close(code: number = NO_ERROR): void {
    if (this.destroyed) return;
    if (!this.reset && !(this.localEnded && this.remoteEnded)) {
      this.rstCode = code;
      this.#session.resetStream(this, code);
    }
    this.destroy();
  }

  /** @internal The peer's RST_STREAM. */
  peerReset(code: number): void {
    this.rstCode = code;
    this.reset = true;
    if (code === NO_ERROR || code === CANCEL) this.destroy();
    else this.destroy(Object.assign(new Error(`Stream closed with error code ${code}`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
  }

  /** @internal Payload bytes of a DATA frame (a copy the stream may keep). */
  deliver(chunk: Buffer): void {
    if (this.destroyed || this.remoteEnded) return;
    // Always pushed (the window bounds what is buffered); what the reader's buffer took below its
    // high-water mark is credited back at once, the rest when it reads (_read).
    const keepingUp = this.push(chunk);
    if (!keepingUp) this.held += chunk.length;
    else this.#session.credit(this, chunk.length);
  }

  /** @internal END_STREAM received. */
  deliverEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.push(null);
    this.#session.maybeClosed(this);
  }

  override _read(): void {
    if (this.held > 0) {
      const n = this.held;
      this.held = 0;
      this.#session.credit(this, n);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#session.sendData(this, [chunk], callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    this.#session.sendData(
      this,
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#session.sendEnd(this, callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.reset && !(this.localEnded && this.remoteEnded)) {
      const code = err ? INTERNAL_ERROR : CANCEL;
      this.rstCode = code;
      this.#session.resetStream(this, code);
    }
    this.#session.forget(this);
    const pending = this.outCallback ?? this.endPending;
    this.outCallback = undefined;
    this.endPending = undefined;
    this.outQueue = [];
    pending?.(err ?? null);
    callback(err);
  }
}

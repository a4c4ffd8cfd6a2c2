/**
 * A CONNECT stream dressed as a socket for node:http's server. node:http's server reads a
 * socket's native handle directly when it has one, and an HTTP/2 stream's handle is not a TCP
 * handle: handed over as it is, the server never sees a byte. This Duplex has no handle, so
 * the server reads it through its events; it also replays the bytes the sniffer already read,
 * and answers the socket calls (setNoDelay, setKeepAlive, ref) that a stream does not have.
 * HTTP/2 (node:http2 wraps any Duplex itself) and the HTTP/1.1 client side take it as well.
 */
import { Duplex } from 'node:stream';

const kOwner = Symbol('weft.streamSocket');
type Inner = Duplex & { [kOwner]?: StreamSocket };

function onInnerData(this: Inner, chunk: Buffer): void {
  const owner = this[kOwner];
  if (owner !== undefined && !owner.push(chunk)) this.pause();
}
function onInnerEnd(this: Inner): void {
  this[kOwner]?.push(null);
}
function onInnerError(this: Inner, err: Error): void {
  const owner = this[kOwner];
  if (owner !== undefined && !owner.destroyed) owner.destroy(err);
}
function onInnerClose(this: Inner): void {
  const owner = this[kOwner];
  if (owner !== undefined && !owner.destroyed) owner.destroy();
}

export interface SocketAddresses {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
  localAddress?: string | undefined;
  localPort?: number | undefined;
}

export class StreamSocket extends Duplex {
  readonly inner: Duplex;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** Bytes that came from the inner stream (the sniffed head included) and that were written to it. */
  bytesRead = 0;
  bytesWritten = 0;
  #lastActivity = Date.now();
  #timeoutMs = 0;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(inner: Duplex, head: Buffer | undefined, addresses: SocketAddresses = {}) {
    super({ allowHalfOpen: true });
    this.inner = inner;
    this.remoteAddress = addresses.remoteAddress;
    this.remotePort = addresses.remotePort;
    this.localAddress = addresses.localAddress;
    this.localPort = addresses.localPort;
    if (head !== undefined && head.length > 0) this.push(head);
    (inner as Inner)[kOwner] = this;
    inner.on('data', onInnerData);
    inner.on('end', onInnerEnd);
    inner.on('error', onInnerError);
    inner.on('close', onInnerClose);
    if (inner.readableEnded) this.push(null);
    inner.resume();
  }

  override push(chunk: Buffer | null): boolean {
    if (chunk !== null) {
      this.bytesRead += chunk.length;
      this.#lastActivity = Date.now();
    }
    return super.push(chunk);
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    this.#lastActivity = Date.now();
    this.inner.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    (this.inner as Inner)[kOwner] = undefined;
    clearTimeout(this.#idleTimer);
    if (!this.inner.destroyed) this.inner.destroy(err ?? undefined);
    cb(err);
  }

  /**
   * net.Socket's inactivity timeout ('timeout' after `ms` without bytes either way): node:http
   * closes idle keep-alive connections with it. One timer per socket, re-armed for the rest of
   * the time when it fires early, instead of a reset per chunk.
   */
  setTimeout(ms: number, cb?: () => void): this {
    if (cb !== undefined) this.once('timeout', cb);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#timeoutMs = ms;
    if (ms > 0 && !this.destroyed) this.#arm(ms);
    return this;
  }

  #arm(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.destroyed || this.#timeoutMs === 0) return;
      const idle = Date.now() - this.#lastActivity;
      if (idle >= this.#timeoutMs) this.emit('timeout');
      else this.#arm(this.#timeoutMs - idle);
    }, ms);
    this.#idleTimer.unref();
  }

  // What node:http asks of a net.Socket besides; the HBONE connection under the stream has its own.
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }
  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

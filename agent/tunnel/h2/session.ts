/**
 * The lean HBONE session: the HTTP/2 subset HBONE uses (RFC 9113: SETTINGS, HEADERS with
 * CONTINUATION, DATA, WINDOW_UPDATE, PING, GOAWAY, RST_STREAM; PRIORITY is read and ignored,
 * PUSH_PROMISE refused), over a TLS socket read into one reused buffer, client or server.
 * It has the part of node:http2's Http2Session the pool and the server use: `request()`,
 * 'stream', `close()`, `destroy()`, `destroyed`, `ping()`, `remoteSettings`, `socket`,
 * 'goaway', 'error', 'close'.
 *
 * Reads: frames are parsed in place from the read buffer; only what outlives the read is copied
 * (a DATA payload handed to its stream, a header block split over reads). Writes: a DATA frame is
 * its 9-byte head and a view of the caller's chunk, held until the end of the event loop's
 * turn (setImmediate), so that what every read of the turn answered goes out in one TLS write.
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, Settings } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import * as c from './constants.js';
import { HpackDecoder, HpackEncoder, HpackError, type HeaderList } from './hpack.js';
import { readIntoReusedBuffer } from './reads.js';
import { LeanStream } from './stream.js';

export interface LeanSessionOptions {
  isServer: boolean;
  /** What we advertise. */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  connectionWindowSize: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
}

/** Bytes queued on the socket above which stream writes wait for 'drain' (their backpressure). */
/** Batches up to this size are joined into one buffer before the write. */
const SMALL_BATCH_BYTES = 16 * 1024;
const SOCKET_HIGH_WATER = 256 * 1024;
/** TLSWrap hands over cleartext a record (at most 16 KiB) at a time: a larger buffer would idle. */
const READ_BUFFER_BYTES = 16 * 1024;
const HEADER_TABLE_SIZE = 4096;
/** Request headers RFC 9113 8.2.2 calls connection-specific (malformed in HTTP/2). */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);

class ConnectionError extends Error {
  constructor(
    readonly h2code: number,
    message: string,
  ) {
    super(message);
  }
}

export function sessionError(message: string, code = 'ERR_HTTP2_SESSION_ERROR'): Error {
  return Object.assign(new Error(message), { code });
}

function frameHead(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(c.FRAME_HEADER_BYTES);
  h[0] = (length >>> 16) & 0xff;
  h[1] = (length >>> 8) & 0xff;
  h[2] = length & 0xff;
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return h;
}

function onSessionUncork(session: LeanSession): void {
  session.uncork();
}

export class LeanSession extends EventEmitter {
  readonly socket: TLSSocket;
  readonly isServer: boolean;
  readonly #opts: LeanSessionOptions;
  readonly #streams = new Map<number, LeanStream>();
  readonly #decoder: HpackDecoder;
  readonly #encoder = new HpackEncoder();
  remoteSettings: Settings = { headerTableSize: 4096, enablePush: true, maxConcurrentStreams: 4294967295, initialWindowSize: c.DEFAULT_WINDOW, maxFrameSize: c.MIN_MAX_FRAME_SIZE, maxHeaderListSize: 4294967295 };
  #destroyed = false;
  #closing = false;
  #goawaySent = false;
  #goawayReceived = false;
  /** A batch is open: frames go to #out until the end of the event loop turn. */
  #corked = false;
  #prefaceSent = false;
  #out: Buffer[] = [];
  #outBytes = 0;
  #nextStreamId: number;
  /** Highest stream id the peer opened (for GOAWAY and to refuse reused ids). */
  #lastPeerStream = 0;
  #connSendWindow = c.DEFAULT_WINDOW;
  #connRecvWindow: number;
  #connUnacked = 0;
  /** The connection receive window we advertised in total. */
  #connWindowTarget: number;
  /** Streams with data waiting for window. */
  readonly #blocked = new Set<LeanStream>();
  /** Write callbacks waiting for the socket to drain. */
  #drainWaiters: ((err?: Error | null) => void)[] = [];
  #gotSettings = false;
  #prefaceLeft: number;
  // Parser state.
  #acc: Buffer = Buffer.alloc(0);
  #accLen = 0;
  /** Inside a DATA frame's payload: bytes left (padding included), padding at its end, its stream. */
  #dataLeft = 0;
  #dataPad = -1;
  #dataFlags = 0;
  #dataStream: LeanStream | undefined;
  // Header block in progress (HEADERS without END_HEADERS, then CONTINUATION).
  #blockStream = 0;
  #blockFlags = 0;
  #blockParts: Buffer[] = [];
  #blockBytes = 0;
  #continuations = 0;
  // Abuse limits.
  #resetTokens = c.RESET_BURST;
  #resetRefillAt = Date.now();
  #queuedAcks = 0;
  #pings = new Map<string, { at: number; cb: (err: Error | null, duration: number, payload: Buffer) => void }>();
  #pingSeq = 0;

  constructor(socket: TLSSocket, opts: LeanSessionOptions) {
    super();
    this.socket = socket;
    this.isServer = opts.isServer;
    this.#opts = opts;
    this.#nextStreamId = opts.isServer ? 2 : 1;
    this.#prefaceLeft = opts.isServer ? c.PREFACE.length : 0;
    this.#connRecvWindow = opts.connectionWindowSize;
    this.#connWindowTarget = Math.max(c.DEFAULT_WINDOW, opts.connectionWindowSize);
    this.#decoder = new HpackDecoder({ tableSizeLimit: HEADER_TABLE_SIZE, maxHeaderListBytes: opts.maxHeaderListSize });
    // A server's SETTINGS wait for the next turn of the event loop: written in the handshake's
    // tick they share a TCP segment with the TLS 1.3 session ticket, and a client that acts inside
    // its 'session' event (node:http2 made on the socket there, as test/tunnel/session-resumption
    // does) then has TLS read the SETTINGS under it; node:http2's server also answers a tick later.
    if (opts.isServer) setImmediate(() => this.#sendPreface());
    else this.#sendPreface();
    socket.on('close', () => this.#onSocketClose());
    socket.on('error', (err) => this.destroy(err));
    socket.on('end', () => this.destroy());
    socket.on('drain', () => this.#onDrain());
  }

  #sendPreface(): void {
    if (this.#prefaceSent || this.#destroyed) return;
    this.#prefaceSent = true;
    if (!this.isServer) this.#write(c.PREFACE);
    const s = Buffer.allocUnsafe(24);
    let o = 0;
    for (const [id, v] of [
      [c.SETTINGS_ENABLE_PUSH, 0],
      [c.SETTINGS_MAX_CONCURRENT_STREAMS, this.#opts.maxConcurrentStreams],
      [c.SETTINGS_INITIAL_WINDOW_SIZE, this.#opts.initialWindowSize],
      [c.SETTINGS_MAX_FRAME_SIZE, this.#opts.maxFrameSize],
    ] as const) {
      s.writeUInt16BE(id, o);
      s.writeUInt32BE(v, o + 2);
      o += 6;
    }
    const maxList = Buffer.allocUnsafe(6);
    maxList.writeUInt16BE(c.SETTINGS_MAX_HEADER_LIST_SIZE, 0);
    maxList.writeUInt32BE(this.#opts.maxHeaderListSize, 2);
    const settings = Buffer.concat([s, maxList]);
    this.#write(frameHead(settings.length, c.FRAME_SETTINGS, 0, 0));
    this.#write(settings);
    if (this.#opts.connectionWindowSize > c.DEFAULT_WINDOW) this.#windowUpdate(0, this.#opts.connectionWindowSize - c.DEFAULT_WINDOW);
  }

  /** Starts reading: call once the 'stream', 'error' and 'goaway' listeners are on. */
  start(): this {
    const socket = this.socket;
    // What arrived with the handshake is in the socket's buffer already.
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) this.#feed(chunk, 0, chunk.length);
    const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    if (!readIntoReusedBuffer(socket, buffer, (n, buf) => this.#feed(buf, 0, n))) socket.on('data', (chunk: Buffer) => this.#feed(chunk, 0, chunk.length));
    socket.resume();
    return this;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  // ---- public API (node:http2's names) ----

  /** Client: opens a stream with `headers` (a CONNECT: :method and :authority). */
  request(headers: OutgoingHttpHeaders, opts: { endStream?: boolean } = {}): LeanStream {
    if (this.#destroyed || this.#closing || this.#goawayReceived) throw sessionError('The session has been destroyed or is closing', 'ERR_HTTP2_INVALID_SESSION');
    if (this.#streams.size >= (this.remoteSettings.maxConcurrentStreams ?? Infinity)) throw sessionError('the peer allows no more concurrent streams', 'ERR_HTTP2_OUT_OF_STREAMS');
    const id = this.#nextStreamId;
    if (id > c.MAX_WINDOW) throw sessionError('stream ids exhausted', 'ERR_HTTP2_OUT_OF_STREAMS');
    this.#nextStreamId += 2;
    const stream = new LeanStream(this, id, this.#opts.initialWindowSize, this.remoteSettings.initialWindowSize ?? c.DEFAULT_WINDOW);
    this.#streams.set(id, stream);
    const list: HeaderList = [];
    const method = String(headers[':method'] ?? 'GET');
    list.push([':method', method]);
    for (const [k, v] of Object.entries(headers)) {
      if (k === ':method' || v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) list.push([k.toLowerCase(), String(one)]);
    }
    // Pseudo-headers first (RFC 9113 8.3).
    list.sort((a, b) => Number(!a[0].startsWith(':')) - Number(!b[0].startsWith(':')));
    const endStream = opts.endStream === true;
    this.#sendHeaders(id, list, endStream);
    if (endStream) {
      stream.localEnded = true;
      stream.end();
    }
    return stream;
  }

  /** GOAWAY; open streams finish, then the connection closes. */
  close(): void {
    if (this.#destroyed || this.#closing) return;
    this.#closing = true;
    this.#goaway(c.NO_ERROR);
    this.#maybeFinish();
  }

  /** Tears the session down now: every stream is destroyed (with `err` or a session error). */
  destroy(err?: Error): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closing = true;
    // Without an error (a plain destroy, the socket closed) streams close with CANCEL and no
    // 'error', as node:http2's do; the relay reads a non-zero code as an abort.
    const cause = err ?? sessionError('the HBONE session closed');
    this.#destroyStreams(err);
    for (const p of this.#pings.values()) p.cb(sessionError('session destroyed'), 0, Buffer.alloc(8));
    this.#pings.clear();
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w(cause);
    if (this.#corked) this.uncork();
    if (!this.socket.destroyed) this.socket.destroy();
    if (err !== undefined) this.emit('error', err);
  }

  /** Raises the connection's receive window to `size` (node:http2's setLocalWindowSize; never lowers it). */
  setLocalWindowSize(size: number): void {
    if (this.#destroyed || size <= this.#connWindowTarget) return;
    const inc = size - this.#connWindowTarget;
    this.#connWindowTarget = size;
    this.#connRecvWindow += inc;
    this.#windowUpdate(0, inc);
  }

  /** PING; the callback gets the round trip in ms. */
  ping(cb: (err: Error | null, duration: number, payload: Buffer) => void): boolean {
    if (this.#destroyed) return false;
    const payload = Buffer.allocUnsafe(8);
    payload.writeUInt32BE(0x77656674, 0);
    payload.writeUInt32BE(++this.#pingSeq >>> 0, 4);
    this.#pings.set(payload.toString('hex'), { at: performance.now(), cb });
    this.#write(frameHead(8, c.FRAME_PING, 0, 0));
    this.#write(payload);
    return true;
  }

  // ---- called by streams ----

  /** @internal Writes the frames queued in this tick in one writev. */
  uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    const out = this.#out;
    const bytes = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    const socket = this.socket;
    if (socket.destroyed) return;
    if (out.length === 1) {
      socket.write(out[0]!);
    } else if (bytes <= SMALL_BATCH_BYTES) {
      // A request's or response's few frames: one copy is cheaper than a writev's bookkeeping per
      // buffer (TLSWrap copies a writev into one record anyway).
      socket.write(Buffer.concat(out, bytes));
    } else {
      // Corked only for the span of these writes: a TLS socket left corked across ticks stalled
      // (its write callback never came after a client wrote inside its 'session' event).
      socket.cork();
      for (const b of out) socket.write(b);
      socket.uncork();
    }
    // A guard: writers wait in #drainWaiters when socket and batch together pass SOCKET_HIGH_WATER;
    // a batch that large makes the socket's write() return false, so 'drain' comes. Should the
    // socket ever take it without needing one, no 'drain' would release them: release them here.
    if (this.#drainWaiters.length > 0 && !socket.writableNeedDrain) this.#onDrain();
  }

  /** Bytes queued on the socket and in this tick's batch. */
  #queuedBytes(): number {
    return this.socket.writableLength + this.#outBytes;
  }

  /** @internal Server: the response HEADERS. */
  sendResponse(stream: LeanStream, headers: OutgoingHttpHeaders, endStream: boolean): void {
    const list: HeaderList = [[':status', String(headers[':status'] ?? 200)]];
    for (const [k, v] of Object.entries(headers)) {
      if (k === ':status' || v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) list.push([k.toLowerCase(), String(one)]);
    }
    this.#sendHeaders(stream.id, list, endStream);
    if (endStream) {
      stream.localEnded = true;
      if (!stream.remoteEnded) {
        // A complete response: the client need not send more (RFC 9113 8.1); frees the stream now.
        stream.close(c.NO_ERROR);
        return;
      }
      stream.end();
      this.maybeClosed(stream);
    }
  }

  /** @internal Queues `chunks` as DATA; `cb` when they are on the socket (and it is not congested). */
  sendData(stream: LeanStream, chunks: Buffer[], cb: (err?: Error | null) => void): void {
    if (stream.reset || stream.localEnded || this.#destroyed) {
      cb(sessionError('stream closed', 'ERR_HTTP2_INVALID_STREAM'));
      return;
    }
    for (const chunk of chunks) if (chunk.length > 0) stream.outQueue.push(chunk);
    stream.outCallback = cb;
    this.#pump(stream);
  }

  /** @internal END_STREAM after what is queued. */
  sendEnd(stream: LeanStream, cb: (err?: Error | null) => void): void {
    if (stream.reset || stream.localEnded || this.#destroyed) {
      cb();
      return;
    }
    stream.endPending = cb;
    this.#pump(stream);
  }

  /** @internal RST_STREAM from our side. */
  resetStream(stream: LeanStream, code: number): void {
    if (stream.reset) return;
    stream.reset = true;
    if (!this.#destroyed) {
      const p = Buffer.allocUnsafe(4);
      p.writeUInt32BE(code, 0);
      this.#write(frameHead(4, c.FRAME_RST_STREAM, 0, stream.id));
      this.#write(p);
    }
    this.forget(stream);
  }

  /** @internal The reader took `n` bytes: return them to the peer's windows, in batches. */
  credit(stream: LeanStream, n: number): void {
    if (this.#destroyed) return;
    this.#connUnacked += n;
    if (this.#connUnacked >= this.#opts.connectionWindowSize / 2) {
      this.#connRecvWindow += this.#connUnacked;
      this.#windowUpdate(0, this.#connUnacked);
      this.#connUnacked = 0;
    }
    if (stream.remoteEnded || stream.reset) return;
    stream.unacked += n;
    if (stream.unacked >= this.#opts.initialWindowSize / 2) {
      stream.recvWindow += stream.unacked;
      this.#windowUpdate(stream.id, stream.unacked);
      stream.unacked = 0;
    }
  }

  /** @internal Both directions ended: the stream no longer counts. */
  maybeClosed(stream: LeanStream): void {
    if (stream.localEnded && stream.remoteEnded) this.forget(stream);
  }

  /** @internal */
  forget(stream: LeanStream): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    // Bytes the reader never took go back to the connection (the stream's window died with it).
    if (stream.held > 0) {
      this.#returnToConnection(stream.held);
      stream.held = 0;
    }
    this.#blocked.delete(stream);
    this.#maybeFinish();
  }

  // ---- writing ----

  #write(buf: Buffer): void {
    if (this.socket.destroyed) return;
    // Our SETTINGS are the first frame we send (RFC 9113 3.4), also when an answer is due first.
    if (!this.#prefaceSent) this.#sendPreface();
    if (!this.#corked) {
      this.#corked = true;
      // The end of this turn of the event loop, not of this callback: every read of the turn
      // (one per app socket, one per TLS record) adds its frames to one TLS write.
      setImmediate(onSessionUncork, this);
    }
    this.#out.push(buf);
    this.#outBytes += buf.length;
  }

  #windowUpdate(streamId: number, increment: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(increment, 0);
    this.#write(frameHead(4, c.FRAME_WINDOW_UPDATE, 0, streamId));
    this.#write(p);
  }

  #goaway(code: number, message?: string): void {
    if (this.#goawaySent) return;
    this.#goawaySent = true;
    const debug = message === undefined ? Buffer.alloc(0) : Buffer.from(message.slice(0, 128));
    const p = Buffer.allocUnsafe(8);
    p.writeUInt32BE(this.#lastPeerStream, 0);
    p.writeUInt32BE(code, 4);
    this.#write(frameHead(8 + debug.length, c.FRAME_GOAWAY, 0, 0));
    this.#write(p);
    if (debug.length > 0) this.#write(debug);
  }

  #sendHeaders(id: number, list: HeaderList, endStream: boolean): void {
    const block = this.#encoder.encode(list);
    const max = this.remoteSettings.maxFrameSize ?? c.MIN_MAX_FRAME_SIZE;
    let off = 0;
    let first = true;
    do {
      const n = Math.min(max, block.length - off);
      const last = off + n >= block.length;
      const type = first ? c.FRAME_HEADERS : c.FRAME_CONTINUATION;
      const flags = (last ? c.FLAG_END_HEADERS : 0) | (first && endStream ? c.FLAG_END_STREAM : 0);
      this.#write(frameHead(n, type, flags, id));
      this.#write(block.subarray(off, off + n));
      off += n;
      first = false;
    } while (off < block.length);
  }

  /** Sends what the windows allow of the stream's queue; then END_STREAM if asked. */
  #pump(stream: LeanStream): void {
    const maxFrame = this.remoteSettings.maxFrameSize ?? c.MIN_MAX_FRAME_SIZE;
    while (stream.outQueue.length > 0) {
      const chunk = stream.outQueue[0]!;
      const avail = Math.min(stream.sendWindow, this.#connSendWindow, maxFrame);
      if (avail <= 0) {
        this.#blocked.add(stream);
        return;
      }
      const n = Math.min(avail, chunk.length - stream.outOffset);
      this.#write(frameHead(n, c.FRAME_DATA, 0, stream.id));
      this.#write(stream.outOffset === 0 && n === chunk.length ? chunk : chunk.subarray(stream.outOffset, stream.outOffset + n));
      stream.sendWindow -= n;
      this.#connSendWindow -= n;
      stream.outOffset += n;
      if (stream.outOffset === chunk.length) {
        stream.outQueue.shift();
        stream.outOffset = 0;
      }
    }
    this.#blocked.delete(stream);
    const cb = stream.outCallback;
    if (cb !== undefined) {
      stream.outCallback = undefined;
      if (this.#queuedBytes() > SOCKET_HIGH_WATER) this.#drainWaiters.push(cb);
      else cb();
    }
    const end = stream.endPending;
    if (end !== undefined && !stream.localEnded) {
      stream.endPending = undefined;
      stream.localEnded = true;
      this.#write(frameHead(0, c.FRAME_DATA, c.FLAG_END_STREAM, stream.id));
      end();
      this.maybeClosed(stream);
    }
  }

  #onDrain(): void {
    const waiters = this.#drainWaiters;
    if (waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #unblock(): void {
    for (const s of [...this.#blocked]) {
      if (this.#connSendWindow <= 0) return;
      if (s.sendWindow > 0) this.#pump(s);
    }
  }

  #maybeFinish(): void {
    if (!this.#closing || this.#destroyed || this.#streams.size > 0) return;
    // Every stream is done after our GOAWAY: end the connection (FIN after what is queued).
    this.#destroyed = true;
    if (this.#corked) this.uncork();
    this.socket.end();
  }

  #onSocketClose(): void {
    if (!this.#destroyed) this.destroy();
    this.#destroyStreams(undefined);
    this.emit('close');
  }

  #destroyStreams(err: Error | undefined): void {
    for (const s of [...this.#streams.values()]) {
      this.forget(s);
      s.reset = true;
      s.rstCode ??= c.CANCEL;
      s.destroy(err);
    }
  }

  /** Connection error: GOAWAY with `code`, then the socket goes (no reading on after an error). */
  #fail(code: number, reason: string): void {
    if (this.#destroyed) return;
    this.#goaway(code, reason);
    const err = Object.assign(sessionError(`HTTP/2 connection error ${code}: ${reason}`), { h2code: code });
    this.#destroyed = true;
    this.#closing = true;
    this.#destroyStreams(err);
    if (this.#corked) this.uncork();
    const socket = this.socket;
    socket.end(() => socket.destroy());
    // A peer that does not read must not hold the socket open either.
    setTimeout(() => socket.destroy(), 1000).unref();
    this.emit('error', err);
  }

  // ---- reading ----

  #feed(buf: Buffer, start: number, end: number): void {
    try {
      this.#parse(buf, start, end);
    } catch (err) {
      if (err instanceof ConnectionError) this.#fail(err.h2code, err.message);
      else if (err instanceof HpackError) this.#fail(c.COMPRESSION_ERROR, err.message);
      else this.#fail(c.INTERNAL_ERROR, (err as Error).message);
    }
  }

  #parse(buf: Buffer, start: number, end: number): void {
    let pos = start;
    while (this.#prefaceLeft > 0 && pos < end) {
      if (buf[pos] !== c.PREFACE[c.PREFACE.length - this.#prefaceLeft]) throw new ConnectionError(c.PROTOCOL_ERROR, 'invalid connection preface');
      pos++;
      this.#prefaceLeft--;
    }
    while (pos < end && !this.#destroyed) {
      if (this.#dataLeft > 0) {
        pos = this.#dataPayload(buf, pos, end);
        continue;
      }
      if (this.#accLen === 0 && end - pos >= c.FRAME_HEADER_BYTES) {
        const len = this.#checkHead(buf, pos);
        const type = buf[pos + 3]!;
        if (type === c.FRAME_DATA) {
          this.#startData(buf, pos);
          pos += c.FRAME_HEADER_BYTES;
          continue;
        }
        if (end - pos >= c.FRAME_HEADER_BYTES + len) {
          this.#frame(buf, pos, len);
          pos += c.FRAME_HEADER_BYTES + len;
          continue;
        }
        this.#keep(buf, pos, end, c.FRAME_HEADER_BYTES + len);
        return;
      }
      // A frame split over reads: gather it in #acc.
      if (this.#accLen < c.FRAME_HEADER_BYTES) {
        const n = Math.min(c.FRAME_HEADER_BYTES - this.#accLen, end - pos);
        if (this.#acc.length < c.FRAME_HEADER_BYTES) this.#acc = Buffer.allocUnsafe(1024);
        buf.copy(this.#acc, this.#accLen, pos, pos + n);
        this.#accLen += n;
        pos += n;
        if (this.#accLen < c.FRAME_HEADER_BYTES) return;
        const len = this.#checkHead(this.#acc, 0);
        if (this.#acc[3] === c.FRAME_DATA) {
          this.#accLen = 0;
          this.#startData(this.#acc, 0);
          continue;
        }
        if (this.#acc.length < c.FRAME_HEADER_BYTES + len) {
          const bigger = Buffer.allocUnsafe(c.FRAME_HEADER_BYTES + len);
          this.#acc.copy(bigger, 0, 0, this.#accLen);
          this.#acc = bigger;
        }
      }
      const len = this.#acc.readUIntBE(0, 3);
      const need = c.FRAME_HEADER_BYTES + len - this.#accLen;
      const n = Math.min(need, end - pos);
      buf.copy(this.#acc, this.#accLen, pos, pos + n);
      this.#accLen += n;
      pos += n;
      if (n < need) return;
      this.#accLen = 0;
      this.#frame(this.#acc, 0, len);
      // Do not keep a large buffer for one large frame.
      if (this.#acc.length > 16 * 1024) this.#acc = Buffer.alloc(0);
    }
  }

  #keep(buf: Buffer, pos: number, end: number, frameBytes: number): void {
    if (this.#acc.length < frameBytes) this.#acc = Buffer.allocUnsafe(Math.max(1024, frameBytes));
    buf.copy(this.#acc, 0, pos, end);
    this.#accLen = end - pos;
  }

  /** Validates a frame head; returns the payload length. */
  #checkHead(buf: Buffer, pos: number): number {
    const len = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
    if (len > this.#opts.maxFrameSize) throw new ConnectionError(c.FRAME_SIZE_ERROR, `frame of ${len} bytes, above SETTINGS_MAX_FRAME_SIZE`);
    const type = buf[pos + 3]!;
    if (!this.#gotSettings && type !== c.FRAME_SETTINGS) throw new ConnectionError(c.PROTOCOL_ERROR, 'the first frame is not SETTINGS');
    if (this.#blockStream !== 0 && type !== c.FRAME_CONTINUATION) throw new ConnectionError(c.PROTOCOL_ERROR, 'a header block was interrupted');
    return len;
  }

  #startData(buf: Buffer, pos: number): void {
    const len = buf.readUIntBE(pos, 3);
    const flags = buf[pos + 4]!;
    const id = buf.readUInt32BE(pos + 5) & 0x7fffffff;
    if (id === 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'DATA on stream 0');
    if (len > this.#connRecvWindow) throw new ConnectionError(c.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.#connRecvWindow -= len;
    let stream = this.#streams.get(id);
    if (stream === undefined) {
      // A closed stream: frames the peer sent before it saw our RST_STREAM are ignored.
      if (this.#isIdle(id)) throw new ConnectionError(c.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
    } else if (stream.remoteEnded) {
      this.#streamError(stream, c.STREAM_CLOSED);
      stream = undefined;
    } else if (len > stream.recvWindow) {
      this.#streamError(stream, c.FLOW_CONTROL_ERROR);
      stream = undefined;
    } else {
      stream.recvWindow -= len;
    }
    this.#dataStream = stream;
    this.#dataFlags = flags;
    this.#dataPad = flags & c.FLAG_PADDED ? -1 : 0;
    this.#dataLeft = len;
    // A DATA frame nobody takes (closed stream) returns its bytes to the connection at once.
    if (stream === undefined) this.#returnToConnection(len);
    if (len === 0) {
      if (flags & c.FLAG_PADDED) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'padded DATA without a pad length');
      this.#endData();
    }
  }

  /** Consumes DATA payload bytes from buf[pos, end); returns the new position. */
  #dataPayload(buf: Buffer, pos: number, end: number): number {
    if (this.#dataPad === -1) {
      // PADDED: the first byte is the padding length.
      const pad = buf[pos]!;
      pos++;
      this.#dataLeft--;
      if (pad > this.#dataLeft) throw new ConnectionError(c.PROTOCOL_ERROR, 'DATA padding longer than the frame');
      this.#dataPad = pad;
      if (this.#dataStream !== undefined) this.credit(this.#dataStream, 1 + pad);
      if (this.#dataLeft === 0) this.#endData();
      return pos;
    }
    const content = this.#dataLeft - this.#dataPad;
    const n = Math.min(end - pos, this.#dataLeft);
    const take = Math.min(n, Math.max(0, content));
    if (take > 0 && this.#dataStream !== undefined && !this.#dataStream.destroyed) {
      const copy = Buffer.allocUnsafe(take);
      buf.copy(copy, 0, pos, pos + take);
      this.#dataStream.deliver(copy);
    } else if (take > 0 && this.#dataStream !== undefined) {
      this.#returnToConnection(take);
    }
    this.#dataLeft -= n;
    pos += n;
    if (this.#dataLeft === 0) this.#endData();
    return pos;
  }

  #endData(): void {
    const stream = this.#dataStream;
    this.#dataStream = undefined;
    this.#dataLeft = 0;
    if (stream !== undefined && this.#dataFlags & c.FLAG_END_STREAM) stream.deliverEnd();
  }

  #returnToConnection(n: number): void {
    this.#connUnacked += n;
    if (this.#connUnacked >= this.#opts.connectionWindowSize / 2) {
      this.#connRecvWindow += this.#connUnacked;
      this.#windowUpdate(0, this.#connUnacked);
      this.#connUnacked = 0;
    }
  }

  #isIdle(id: number): boolean {
    const peerInitiated = this.isServer ? id % 2 === 1 : id % 2 === 0;
    return peerInitiated ? id > this.#lastPeerStream : id >= this.#nextStreamId;
  }

  #rstId(id: number, code: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.#write(frameHead(4, c.FRAME_RST_STREAM, 0, id));
    this.#write(p);
  }

  #streamError(stream: LeanStream, code: number): void {
    stream.rstCode = code;
    this.resetStream(stream, code);
    stream.destroy(sessionError(`stream error ${code}`, 'ERR_HTTP2_STREAM_ERROR'));
  }

  /** A stream reset (by the peer, or refused by us) costs a token; out of tokens is a flood. */
  #spendResetToken(): void {
    const now = Date.now();
    const refill = Math.floor(((now - this.#resetRefillAt) * c.RESET_RATE_PER_S) / 1000);
    if (refill > 0) {
      this.#resetTokens = Math.min(c.RESET_BURST, this.#resetTokens + refill);
      this.#resetRefillAt = now;
    }
    if (--this.#resetTokens < 0) throw new ConnectionError(c.ENHANCE_YOUR_CALM, 'too many stream resets (rapid reset)');
  }

  /** An ACK we owe: refused when the peer does not read the ones already queued. */
  #ack(): void {
    if (this.#queuedBytes() === 0) this.#queuedAcks = 0;
    if (++this.#queuedAcks > c.MAX_QUEUED_ACKS && this.#queuedBytes() > 0) {
      throw new ConnectionError(c.ENHANCE_YOUR_CALM, 'too many unread SETTINGS/PING acknowledgements');
    }
  }

  /** One complete non-DATA frame: payload buf[pos+9, pos+9+len). */
  #frame(buf: Buffer, pos: number, len: number): void {
    const type = buf[pos + 3]!;
    const flags = buf[pos + 4]!;
    const id = buf.readUInt32BE(pos + 5) & 0x7fffffff;
    const p = pos + c.FRAME_HEADER_BYTES;
    switch (type) {
      case c.FRAME_HEADERS:
        return this.#onHeaders(buf, p, len, flags, id);
      case c.FRAME_CONTINUATION:
        return this.#onContinuation(buf, p, len, flags, id);
      case c.FRAME_SETTINGS:
        return this.#onSettings(buf, p, len, flags, id);
      case c.FRAME_PING:
        return this.#onPing(buf, p, len, flags, id);
      case c.FRAME_WINDOW_UPDATE:
        return this.#onWindowUpdate(buf, p, len, id);
      case c.FRAME_RST_STREAM:
        return this.#onRstStream(buf, p, len, id);
      case c.FRAME_GOAWAY:
        return this.#onGoaway(buf, p, len, id);
      case c.FRAME_PRIORITY:
        if (id === 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (len !== 5) {
          const s = this.#streams.get(id);
          if (s !== undefined) this.#streamError(s, c.FRAME_SIZE_ERROR);
          else this.#rstId(id, c.FRAME_SIZE_ERROR);
        }
        return;
      case c.FRAME_PUSH_PROMISE:
        throw new ConnectionError(c.PROTOCOL_ERROR, 'PUSH_PROMISE (push is disabled)');
      default:
        // Unknown frame types are ignored (RFC 9113 4.1).
        return;
    }
  }

  #onSettings(buf: Buffer, p: number, len: number, flags: number, id: number): void {
    if (id !== 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & c.FLAG_ACK) {
      if (len !== 0) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (len % 6 !== 0) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
    if (len / 6 > c.MAX_SETTINGS_ENTRIES) throw new ConnectionError(c.ENHANCE_YOUR_CALM, `SETTINGS with ${len / 6} entries`);
    this.#gotSettings = true;
    const next: Settings = { ...this.remoteSettings };
    for (let o = p; o < p + len; o += 6) {
      const key = buf.readUInt16BE(o);
      const value = buf.readUInt32BE(o + 2);
      switch (key) {
        case c.SETTINGS_HEADER_TABLE_SIZE:
          // Our encoder keeps no table: any size is fine.
          next.headerTableSize = value;
          break;
        case c.SETTINGS_ENABLE_PUSH:
          if (value > 1 || (!this.isServer && value === 1)) throw new ConnectionError(c.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
          next.enablePush = value === 1;
          break;
        case c.SETTINGS_MAX_CONCURRENT_STREAMS:
          next.maxConcurrentStreams = value;
          break;
        case c.SETTINGS_INITIAL_WINDOW_SIZE:
          if (value > c.MAX_WINDOW) throw new ConnectionError(c.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
          next.initialWindowSize = value;
          break;
        case c.SETTINGS_MAX_FRAME_SIZE:
          if (value < c.MIN_MAX_FRAME_SIZE || value > c.MAX_MAX_FRAME_SIZE) throw new ConnectionError(c.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
          next.maxFrameSize = value;
          break;
        case c.SETTINGS_MAX_HEADER_LIST_SIZE:
          next.maxHeaderListSize = value;
          break;
        default:
          // Unknown settings are ignored (RFC 9113 6.5.2).
          break;
      }
    }
    const delta = (next.initialWindowSize ?? c.DEFAULT_WINDOW) - (this.remoteSettings.initialWindowSize ?? c.DEFAULT_WINDOW);
    this.remoteSettings = next;
    if (delta !== 0) {
      // 6.9.2: the change applies to every open stream's send window.
      for (const s of this.#streams.values()) {
        if (s.sendWindow + delta > c.MAX_WINDOW) throw new ConnectionError(c.FLOW_CONTROL_ERROR, 'a stream window above 2^31-1');
        s.sendWindow += delta;
      }
      if (delta > 0) this.#unblock();
    }
    this.#ack();
    this.#write(frameHead(0, c.FRAME_SETTINGS, c.FLAG_ACK, 0));
    this.emit('remoteSettings', next);
  }

  #onPing(buf: Buffer, p: number, len: number, flags: number, id: number): void {
    if (id !== 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'PING on a stream');
    if (len !== 8) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'PING of other than 8 bytes');
    if (flags & c.FLAG_ACK) {
      const key = buf.toString('hex', p, p + 8);
      const pending = this.#pings.get(key);
      if (pending !== undefined) {
        this.#pings.delete(key);
        pending.cb(null, performance.now() - pending.at, Buffer.from(buf.subarray(p, p + 8)));
      }
      return;
    }
    this.#ack();
    this.#write(frameHead(8, c.FRAME_PING, c.FLAG_ACK, 0));
    this.#write(Buffer.from(buf.subarray(p, p + 8)));
  }

  #onWindowUpdate(buf: Buffer, p: number, len: number, id: number): void {
    if (len !== 4) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'WINDOW_UPDATE of other than 4 bytes');
    const inc = buf.readUInt32BE(p) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
      if (this.#connSendWindow + inc > c.MAX_WINDOW) throw new ConnectionError(c.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      this.#connSendWindow += inc;
      this.#unblock();
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#isIdle(id)) throw new ConnectionError(c.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      return;
    }
    if (inc === 0) return this.#streamError(s, c.PROTOCOL_ERROR);
    if (s.sendWindow + inc > c.MAX_WINDOW) return this.#streamError(s, c.FLOW_CONTROL_ERROR);
    s.sendWindow += inc;
    if (this.#blocked.has(s)) this.#pump(s);
  }

  #onRstStream(buf: Buffer, p: number, len: number, id: number): void {
    if (id === 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (len !== 4) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'RST_STREAM of other than 4 bytes');
    if (this.#isIdle(id)) throw new ConnectionError(c.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
    this.#spendResetToken();
    const s = this.#streams.get(id);
    if (s === undefined) return;
    this.forget(s);
    s.peerReset(buf.readUInt32BE(p));
  }

  #onGoaway(buf: Buffer, p: number, len: number, id: number): void {
    if (id !== 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (len < 8) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes');
    const last = buf.readUInt32BE(p) & 0x7fffffff;
    const code = buf.readUInt32BE(p + 4);
    this.#goawayReceived = true;
    // Our streams above `last` never reached the peer's application: safe to retry elsewhere.
    for (const s of [...this.#streams.values()]) {
      const ours = this.isServer ? s.id % 2 === 0 : s.id % 2 === 1;
      if (ours && s.id > last) {
        this.forget(s);
        s.reset = true;
        s.rstCode = c.REFUSED_STREAM;
        s.destroy(sessionError('stream refused by GOAWAY', 'ERR_HTTP2_STREAM_ERROR'));
      }
    }
    this.emit('goaway', code, last);
    if (code !== c.NO_ERROR) this.destroy(sessionError(`the peer sent GOAWAY with code ${code}`));
  }

  #onHeaders(buf: Buffer, p: number, len: number, flags: number, id: number): void {
    if (id === 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let start = p;
    let end = p + len;
    if (flags & c.FLAG_PADDED) {
      if (len < 1) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'padded HEADERS without a pad length');
      const pad = buf[start]!;
      start++;
      if (pad > end - start) throw new ConnectionError(c.PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
      end -= pad;
    }
    if (flags & c.FLAG_PRIORITY) {
      if (end - start < 5) throw new ConnectionError(c.FRAME_SIZE_ERROR, 'HEADERS priority fields missing');
      start += 5;
    }
    if (flags & c.FLAG_END_HEADERS) {
      this.#onHeaderBlock(id, flags, buf.subarray(start, end));
      return;
    }
    this.#blockStream = id;
    this.#blockFlags = flags;
    this.#blockParts = [Buffer.from(buf.subarray(start, end))];
    this.#blockBytes = end - start;
    this.#continuations = 0;
  }

  #onContinuation(buf: Buffer, p: number, len: number, flags: number, id: number): void {
    if (this.#blockStream === 0 || id !== this.#blockStream) throw new ConnectionError(c.PROTOCOL_ERROR, 'CONTINUATION without its HEADERS');
    this.#blockBytes += len;
    // CONTINUATION floods (CVE-2024-27316 class): bounded in frames and in bytes.
    if (++this.#continuations > c.MAX_CONTINUATIONS || this.#blockBytes > 2 * this.#opts.maxHeaderListSize) {
      throw new ConnectionError(c.ENHANCE_YOUR_CALM, 'header block too large (CONTINUATION flood)');
    }
    this.#blockParts.push(Buffer.from(buf.subarray(p, p + len)));
    if ((flags & c.FLAG_END_HEADERS) === 0) return;
    const block = Buffer.concat(this.#blockParts);
    const headersFlags = this.#blockFlags;
    this.#blockStream = 0;
    this.#blockParts = [];
    this.#onHeaderBlock(id, headersFlags, block);
  }

  #onHeaderBlock(id: number, flags: number, block: Buffer): void {
    // Decoded even for a stream that is refused: the table must stay in step with the peer's.
    const { headers, tooLarge } = this.#decoder.decode(block);
    const endStream = (flags & c.FLAG_END_STREAM) !== 0;
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      if (!this.isServer && !existing.responded) return this.#onResponse(existing, headers, tooLarge, endStream);
      // Trailers: only as the end of the stream.
      if (!endStream) return this.#streamError(existing, c.PROTOCOL_ERROR);
      existing.deliverEnd();
      return;
    }
    if (!this.isServer) {
      if (id % 2 === 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'server-initiated stream');
      if (this.#isIdle(id)) throw new ConnectionError(c.PROTOCOL_ERROR, `HEADERS on idle stream ${id}`);
      return;
    }
    if (id % 2 === 0) throw new ConnectionError(c.PROTOCOL_ERROR, 'client opened an even stream');
    if (id <= this.#lastPeerStream) throw new ConnectionError(c.STREAM_CLOSED, `HEADERS on closed stream ${id}`);
    this.#lastPeerStream = id;
    if (this.#closing) {
      this.#rstId(id, c.REFUSED_STREAM);
      return;
    }
    if (tooLarge || this.#streams.size >= this.#opts.maxConcurrentStreams) {
      this.#spendResetToken();
      this.#rstId(id, tooLarge ? c.ENHANCE_YOUR_CALM : c.REFUSED_STREAM);
      return;
    }
    const request = requestHeaders(headers);
    if (request === undefined) {
      this.#spendResetToken();
      this.#rstId(id, c.PROTOCOL_ERROR);
      return;
    }
    const stream = new LeanStream(this, id, this.#opts.initialWindowSize, this.remoteSettings.initialWindowSize ?? c.DEFAULT_WINDOW);
    this.#streams.set(id, stream);
    if (endStream) stream.deliverEnd();
    this.emit('stream', stream, request);
  }

  #onResponse(stream: LeanStream, headers: HeaderList, tooLarge: boolean, endStream: boolean): void {
    if (tooLarge) return this.#streamError(stream, c.ENHANCE_YOUR_CALM);
    const out: IncomingHttpHeaders = {};
    for (const [name, value] of headers) addHeader(out, name, value);
    const status = Number(out[':status']);
    if (!Number.isInteger(status) || headers.some(([n]) => n.startsWith(':') && n !== ':status')) return this.#streamError(stream, c.PROTOCOL_ERROR);
    // 1xx: informational, the response is still to come.
    if (status >= 100 && status < 200) return;
    stream.responded = true;
    stream.emit('response', out, endStream ? c.FLAG_END_STREAM : 0);
    if (endStream) stream.deliverEnd();
  }
}

function addHeader(out: IncomingHttpHeaders, name: string, value: string): void {
  const prev = out[name];
  if (prev === undefined) out[name] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else out[name] = [prev, value];
}

/**
 * A request's headers as node:http2 gives them, or undefined when the request is malformed
 * (RFC 9113 8.2 and 8.3): pseudo-headers after regular ones, unknown or repeated pseudo-headers,
 * upper-case names, connection-specific headers; a CONNECT with :scheme or :path or without
 * :authority (8.5); another method without :method, :scheme or :path.
 */
function requestHeaders(list: HeaderList): IncomingHttpHeaders | undefined {
  const out: IncomingHttpHeaders = {};
  let regular = false;
  for (const [name, value] of list) {
    if (name.length === 0 || name !== name.toLowerCase()) return undefined;
    if (name.startsWith(':')) {
      if (regular || !REQUEST_PSEUDO.has(name) || out[name] !== undefined) return undefined;
      out[name] = value;
      continue;
    }
    regular = true;
    if (CONNECTION_HEADERS.has(name) || (name === 'te' && value !== 'trailers')) return undefined;
    addHeader(out, name, value);
  }
  const method = out[':method'];
  if (method === undefined) return undefined;
  if (method === 'CONNECT' && out[':protocol'] === undefined) {
    if (out[':scheme'] !== undefined || out[':path'] !== undefined || out[':authority'] === undefined) return undefined;
  } else if (out[':protocol'] !== undefined) {
    // Extended CONNECT (RFC 8441) is not offered (no SETTINGS_ENABLE_CONNECT_PROTOCOL).
    return undefined;
  } else if (out[':scheme'] === undefined || out[':path'] === undefined) {
    return undefined;
  }
  return out;
}

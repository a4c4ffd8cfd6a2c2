/**
 * A measuring stick, not a product path: TLS 1.3's record layer (RFC 8446 section 5.2,
 * AES-256-GCM, the per-record nonce of section 5.3) done in JavaScript with node:crypto over a
 * plain TCP socket read with `onread`, for tunnel-throughput's `aead` mode. It answers one
 * question from bench/README.md's sixth round: Node's TLSWrap adds ~20 µs of user time per TLS
 * read or write; would a record layer of our own over a plaintext socket (the shape kernel TLS
 * gives, without the kernel) cost less? Keys are random per run and handed to both proxies, with
 * no handshake, no alerts and no key update, so nothing here may carry real traffic.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type net from 'node:net';

/** TLSInnerPlaintext's limit (2^14) and the record header: type 23, legacy version 0x0303, length. */
const MAX_PLAINTEXT = 16 * 1024;
const HEADER_BYTES = 5;
const TAG_BYTES = 16;
const APPLICATION_DATA = 23;
const INNER_TYPE = Buffer.from([APPLICATION_DATA]);

export interface DirectionKeys {
  key: Buffer;
  iv: Buffer;
}

/** The per-record nonce: the IV with the 64-bit sequence number XORed into its last 8 bytes. */
function nonceFor(iv: Buffer, seq: number, out: Buffer): Buffer {
  iv.copy(out);
  const high = Math.floor(seq / 0x1_0000_0000);
  out.writeUInt32BE((out.readUInt32BE(4) ^ high) >>> 0, 4);
  out.writeUInt32BE((out.readUInt32BE(8) ^ seq) >>> 0, 8);
  return out;
}

/** Seals plaintext into records written to `sink`. */
export class RecordSealer {
  readonly #keys: DirectionKeys;
  readonly #nonce = Buffer.alloc(12);
  #seq = 0;

  constructor(keys: DirectionKeys) {
    this.#keys = keys;
  }

  /** Writes `plain` as records; returns write()'s backpressure answer. */
  write(plain: Buffer, sink: net.Socket): boolean {
    let ok = true;
    for (let off = 0; off < plain.length; off += MAX_PLAINTEXT) {
      const part = plain.subarray(off, Math.min(off + MAX_PLAINTEXT, plain.length));
      const length = part.length + 1 + TAG_BYTES;
      const header = Buffer.allocUnsafe(HEADER_BYTES);
      header[0] = APPLICATION_DATA;
      header.writeUInt16BE(0x0303, 1);
      header.writeUInt16BE(length, 3);
      const cipher = createCipheriv('aes-256-gcm', this.#keys.key, nonceFor(this.#keys.iv, this.#seq++, this.#nonce));
      cipher.setAAD(header);
      const body = cipher.update(part);
      const type = cipher.update(INNER_TYPE);
      cipher.final();
      sink.cork();
      sink.write(header);
      sink.write(body);
      sink.write(type);
      ok = sink.write(cipher.getAuthTag());
      sink.uncork();
    }
    return ok;
  }
}

/** Opens records as they arrive (in any cut) and hands out their plaintext. */
export class RecordOpener {
  readonly #keys: DirectionKeys;
  readonly #nonce = Buffer.alloc(12);
  #seq = 0;
  /** Bytes of an incomplete record carried over from the last read (a copy: reads are reused). */
  #partial: Buffer | undefined;

  constructor(keys: DirectionKeys) {
    this.#keys = keys;
  }

  /** `chunk` may be a reused read buffer: nothing here keeps a view of it past the call. */
  feed(chunk: Buffer, onPlain: (plain: Buffer) => void): void {
    let data = chunk;
    if (this.#partial !== undefined) {
      data = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    let off = 0;
    while (data.length - off >= HEADER_BYTES) {
      const length = data.readUInt16BE(off + 3);
      if (data[off] !== APPLICATION_DATA || length < 1 + TAG_BYTES || length > MAX_PLAINTEXT + 256) throw new Error('aead-records: not an application-data record');
      if (data.length - off < HEADER_BYTES + length) break;
      const header = data.subarray(off, off + HEADER_BYTES);
      const bodyEnd = off + HEADER_BYTES + length - TAG_BYTES;
      const decipher = createDecipheriv('aes-256-gcm', this.#keys.key, nonceFor(this.#keys.iv, this.#seq++, this.#nonce));
      decipher.setAAD(header);
      decipher.setAuthTag(data.subarray(bodyEnd, bodyEnd + TAG_BYTES));
      const inner = decipher.update(data.subarray(off + HEADER_BYTES, bodyEnd));
      decipher.final();
      // The inner content type is the last non-zero byte; this sealer adds no padding.
      if (inner[inner.length - 1] !== APPLICATION_DATA) throw new Error('aead-records: unexpected inner content type');
      if (inner.length > 1) onPlain(inner.subarray(0, inner.length - 1));
      off += HEADER_BYTES + length;
    }
    if (off < data.length) this.#partial = Buffer.from(data.subarray(off));
  }
}

const kFeed = Symbol('aead.feed');
type SealedSocket = net.Socket & { [kFeed]?: (chunk: Buffer) => boolean };

function onSealedRead(this: SealedSocket, n: number, buf: Uint8Array): boolean {
  return this[kFeed]!(Buffer.from(buf.buffer, buf.byteOffset, n));
}

/**
 * The `onread` of every socket that carries records: one buffer for the process (each read is
 * opened before the next one lands; the opener copies only an incomplete record's tail).
 */
export const SEALED_READS: net.OnReadOpts = { buffer: Buffer.allocUnsafe(64 * 1024), callback: onSealedRead as (n: number, buf: Uint8Array) => boolean };

/**
 * Relays `plain` (an app-side socket) and `sealed` (the socket to the other proxy, made with
 * SEALED_READS) through a sealer and an opener: what the app writes leaves sealed, what the peer
 * sends arrives opened.
 */
export function aeadRelay(plain: net.Socket, sealed: net.Socket, out: DirectionKeys, back: DirectionKeys): void {
  const sealer = new RecordSealer(out);
  const opener = new RecordOpener(back);
  let held = false;
  const deliver = (p: Buffer): void => {
    if (!plain.write(p)) held = true;
  };
  (sealed as SealedSocket)[kFeed] = (chunk: Buffer): boolean => {
    try {
      opener.feed(chunk, deliver);
    } catch (err) {
      sealed.destroy(err as Error);
      return false;
    }
    // false stops reading until plain drains (then resume() starts it again).
    return !held;
  };
  plain.on('data', (d: Buffer) => {
    if (!sealer.write(d, sealed)) plain.pause();
  });
  sealed.on('drain', () => plain.resume());
  plain.on('drain', () => {
    if (!held) return;
    held = false;
    sealed.resume();
  });
  plain.on('end', () => sealed.end());
  sealed.on('end', () => plain.end());
  plain.on('error', () => sealed.destroy());
  sealed.on('error', () => plain.destroy());
  plain.on('close', () => sealed.destroy());
  sealed.on('close', () => plain.destroy());
}

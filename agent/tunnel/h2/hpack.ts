/**
 * HPACK (RFC 7541): a complete decoder (static and dynamic table, table size updates, Huffman,
 * all literal forms) with a header-list size limit, and a small encoder. The encoder never
 * indexes: it opens its first block with a table size update to 0, then sends static-table
 * matches as indexes and everything else as literals without indexing (Huffman when shorter).
 * HBONE's header blocks are a CONNECT and a status, so a dynamic table would save a few bytes
 * per stream and cost memory per connection and a hash lookup per field.
 */
import { huffmanDecode, huffmanEncode, huffmanLength, HuffmanError } from './huffman.js';

/** RFC 7541 Appendix A. Index 1 is STATIC[0]. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length;
/** Per name: its first static index, and per value its exact index. */
const STATIC_NAME = new Map<string, number>();
const STATIC_PAIR = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
  STATIC_PAIR.set(`${name}\u0000${value}`, i + 1);
});

/** Every decoding error is a connection error COMPRESSION_ERROR (RFC 9113 section 4.3). */
export class HpackError extends Error {}

/** RFC 7541 section 4.1: an entry's size is its name and value plus 32. */
const ENTRY_OVERHEAD = 32;

export type HeaderList = [name: string, value: string][];

export interface DecodedBlock {
  headers: HeaderList;
  /** The list went past the limit: `headers` is incomplete (the table was still kept in step). */
  tooLarge: boolean;
}

export class HpackDecoder {
  /** What the decoder allows (our SETTINGS_HEADER_TABLE_SIZE). */
  readonly #limit: number;
  #maxSize: number;
  #size = 0;
  /** Newest last. */
  readonly #entries: [string, string][] = [];
  readonly #maxListBytes: number;

  constructor(opts: { tableSizeLimit?: number; maxHeaderListBytes?: number } = {}) {
    this.#limit = opts.tableSizeLimit ?? 4096;
    this.#maxSize = this.#limit;
    this.#maxListBytes = opts.maxHeaderListBytes ?? Infinity;
  }

  /** The dynamic table, newest first (for tests), and its size. */
  table(): { entries: [string, string][]; size: number; maxSize: number } {
    return { entries: [...this.#entries].reverse(), size: this.#size, maxSize: this.#maxSize };
  }

  decode(block: Uint8Array): DecodedBlock {
    const headers: HeaderList = [];
    let listBytes = 0;
    let tooLarge = false;
    let pos = 0;
    let fieldSeen = false;
    const end = block.length;
    const emit = (name: string, value: string): void => {
      fieldSeen = true;
      if (tooLarge) return;
      listBytes += name.length + value.length + ENTRY_OVERHEAD;
      if (listBytes > this.#maxListBytes) tooLarge = true;
      else headers.push([name, value]);
    };
    while (pos < end) {
      const b = block[pos]!;
      if (b & 0x80) {
        // 6.1 Indexed Header Field.
        const [index, next] = decodeInteger(block, pos, 7);
        pos = next;
        const [name, value] = this.#at(index);
        emit(name, value);
      } else if (b & 0x40) {
        // 6.2.1 Literal with Incremental Indexing.
        const [name, value, next] = this.#literal(block, pos, 6);
        pos = next;
        this.#add(name, value);
        emit(name, value);
      } else if (b & 0x20) {
        // 6.3 Dynamic Table Size Update: only before the first field of a block (4.2).
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const [size, next] = decodeInteger(block, pos, 5);
        pos = next;
        if (size > this.#limit) throw new HpackError(`dynamic table size update to ${size}, above the limit ${this.#limit}`);
        this.#maxSize = size;
        this.#evict(0);
      } else {
        // 6.2.2 without indexing (0000), 6.2.3 never indexed (0001): both 4-bit prefixes.
        const [name, value, next] = this.#literal(block, pos, 4);
        pos = next;
        emit(name, value);
      }
    }
    return { headers, tooLarge };
  }

  #literal(block: Uint8Array, pos: number, prefix: number): [string, string, number] {
    const [index, afterIndex] = decodeInteger(block, pos, prefix);
    let name: string;
    let next = afterIndex;
    if (index === 0) {
      [name, next] = decodeString(block, next);
    } else {
      name = this.#at(index)[0];
    }
    const [value, end] = decodeString(block, next);
    return [name, value, end];
  }

  #at(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('header index 0');
    if (index <= STATIC_COUNT) return STATIC_TABLE[index - 1]!;
    const e = this.#entries[this.#entries.length - 1 - (index - STATIC_COUNT - 1)];
    if (e === undefined) throw new HpackError(`header index ${index} beyond the table`);
    return e;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    // 4.4: an entry larger than the table empties it and is not added.
    this.#evict(size);
    if (size <= this.#maxSize) {
      this.#entries.push([name, value]);
      this.#size += size;
    }
  }

  /** Evicts oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    while (this.#entries.length > 0 && this.#size + room > this.#maxSize) {
      const [n, v] = this.#entries.shift()!;
      this.#size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}

/** RFC 7541 5.1; values beyond 2^32 are refused (no header needs them, and they would lose precision). */
export function decodeInteger(src: Uint8Array, pos: number, prefix: number): [number, number] {
  if (pos >= src.length) throw new HpackError('truncated integer');
  const max = (1 << prefix) - 1;
  let value = src[pos]! & max;
  pos++;
  if (value < max) return [value, pos];
  let shift = 0;
  for (;;) {
    if (pos >= src.length) throw new HpackError('truncated integer');
    const b = src[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (value > 0xffffffff) throw new HpackError('integer too large');
    if ((b & 0x80) === 0) return [value, pos];
  }
}

function decodeString(src: Uint8Array, pos: number): [string, number] {
  if (pos >= src.length) throw new HpackError('truncated string');
  const huffman = (src[pos]! & 0x80) !== 0;
  const [len, start] = decodeInteger(src, pos, 7);
  const end = start + len;
  if (end > src.length) throw new HpackError('string beyond the block');
  if (!huffman) return [Buffer.from(src.buffer, src.byteOffset + start, len).toString('latin1'), end];
  try {
    return [huffmanDecode(src, start, end).toString('latin1'), end];
  } catch (err) {
    if (err instanceof HuffmanError) throw new HpackError(err.message);
    throw err;
  }
}

/** Writes an integer with an N-bit prefix whose high bits are `high`; returns the new position. */
export function encodeInteger(value: number, prefix: number, high: number, out: Buffer, pos: number): number {
  const max = (1 << prefix) - 1;
  if (value < max) {
    out[pos++] = high | value;
    return pos;
  }
  out[pos++] = high | max;
  let v = value - max;
  while (v >= 128) {
    out[pos++] = (v % 128) + 128;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

function encodeString(s: string, out: Buffer, pos: number): number {
  const h = huffmanLength(s);
  if (h < s.length) {
    pos = encodeInteger(h, 7, 0x80, out, pos);
    return huffmanEncode(s, out, pos);
  }
  pos = encodeInteger(s.length, 7, 0, out, pos);
  return pos + out.write(s, pos, 'latin1');
}

export class HpackEncoder {
  #first = true;

  /** One header block for `headers` (names lowercase; latin1 strings). */
  encode(headers: HeaderList): Buffer {
    let max = 1;
    for (const [n, v] of headers) max += n.length + v.length + 12;
    const out = Buffer.allocUnsafe(max);
    let pos = 0;
    if (this.#first) {
      // Our table is empty for good: tell the peer's decoder so (6.3).
      out[pos++] = 0x20;
      this.#first = false;
    }
    for (const [name, value] of headers) {
      const exact = STATIC_PAIR.get(`${name}\u0000${value}`);
      if (exact !== undefined) {
        pos = encodeInteger(exact, 7, 0x80, out, pos);
        continue;
      }
      const nameIndex = STATIC_NAME.get(name);
      if (nameIndex !== undefined) {
        pos = encodeInteger(nameIndex, 4, 0x00, out, pos);
      } else {
        out[pos++] = 0x00;
        pos = encodeString(name, out, pos);
      }
      pos = encodeString(value, out, pos);
    }
    return out.subarray(0, pos);
  }
}

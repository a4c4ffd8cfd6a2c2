/**
 * HPACK's Huffman code (RFC 7541 section 5.2, Appendix B). The code is canonical: codes of one
 * length are consecutive in symbol order and each length continues from the last code of the
 * shorter one. So the table is kept as its 257 code lengths (Appendix B's "len" column) and the
 * codes are derived from them (test/tunnel/h2-hpack.test.ts checks codes against Appendix B).
 */

/** Code length in bits of symbols 0..255 and EOS (256). */
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
export const EOS = 256;
const MAX_LEN = 30;

/** Code of each symbol (right-aligned), from the lengths. */
export const CODES: readonly number[] = (() => {
  const order = LENGTHS.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  const codes = new Array<number>(LENGTHS.length).fill(0);
  let code = 0;
  let len = order[0]!.len;
  for (const e of order) {
    code *= 2 ** (e.len - len);
    len = e.len;
    codes[e.sym] = code++;
  }
  return codes;
})();
export const CODE_LENGTHS: readonly number[] = LENGTHS;

// Canonical decoding: per length, the first code, how many codes, and where its symbols start.
const FIRST = new Array<number>(MAX_LEN + 1).fill(0);
const COUNT = new Array<number>(MAX_LEN + 1).fill(0);
const OFFSET = new Array<number>(MAX_LEN + 1).fill(0);
const SORTED: number[] = [];
(() => {
  for (const len of LENGTHS) COUNT[len]!++;
  const order = LENGTHS.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  for (const e of order) SORTED.push(e.sym);
  let offset = 0;
  for (let len = 1; len <= MAX_LEN; len++) {
    OFFSET[len] = offset;
    FIRST[len] = COUNT[len]! > 0 ? CODES[SORTED[offset]!]! : 0;
    offset += COUNT[len]!;
  }
})();

export class HuffmanError extends Error {}

/** Decodes `src[start, end)`; throws HuffmanError on EOS, padding longer than 7 bits or not all ones. */
export function huffmanDecode(src: Uint8Array, start: number, end: number): Buffer {
  // At most 8/5 symbols per byte (the shortest code is 5 bits).
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let n = 0;
  let code = 0;
  let len = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const idx = code - FIRST[len]!;
      if (idx >= 0 && idx < COUNT[len]!) {
        const sym = SORTED[OFFSET[len]! + idx]!;
        if (sym === EOS) throw new HuffmanError('Huffman string contains EOS');
        out[n++] = sym;
        code = 0;
        len = 0;
      } else if (len >= MAX_LEN) {
        throw new HuffmanError('invalid Huffman code');
      }
    }
  }
  // Padding: the most significant bits of EOS (all ones), at most 7 of them.
  if (len > 7 || code !== 2 ** len - 1) throw new HuffmanError('invalid Huffman padding');
  return out.subarray(0, n);
}

/** Length in bytes of `s` (latin1) Huffman-coded. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += LENGTHS[s.charCodeAt(i) & 0xff]!;
  return Math.ceil(bits / 8);
}

/** Appends `s` (latin1) Huffman-coded to `out` at `pos`; returns the new position. */
export function huffmanEncode(s: string, out: Buffer, pos: number): number {
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = CODES[sym]!;
    let len = LENGTHS[sym]!;
    // Emit in pieces so that the accumulator stays within 32-bit integer arithmetic.
    while (len > 0) {
      const take = Math.min(len, 8 - bits);
      const part = Math.floor(code / 2 ** (len - take)) & ((1 << take) - 1);
      acc = (acc << take) | part;
      bits += take;
      len -= take;
      code %= 2 ** len;
      if (bits === 8) {
        out[pos++] = acc;
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out[pos++] = (acc << (8 - bits)) | ((1 << (8 - bits)) - 1);
  return pos;
}

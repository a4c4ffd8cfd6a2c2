/**
 * A minimal DER reader: enough to take apart certificates and CSRs (find a field, slice its exact
 * bytes). Slicing the original bytes, instead of decoding and re-encoding, keeps signed data
 * byte-identical, which signature checks need.
 */
import { WeftError } from '../errors.js';

export interface Tlv {
  /** The identifier octet (tag class, constructed bit, tag number < 31). */
  tag: number;
  /** Offset of the identifier octet. */
  start: number;
  /** Offset of the first content octet. */
  contentStart: number;
  /** Offset just past the last content octet. */
  end: number;
}

export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_OID = 0x06;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;

function malformed(what: string): WeftError {
  return new WeftError('WEFT_ERR_CA_BAD_REQUEST', `malformed DER: ${what}`);
}

export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw malformed('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed('high tag numbers are not used here');
  let len = buf[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || pos + n > limit) throw malformed('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]!;
    pos += n;
  }
  const end = pos + len;
  if (end > limit) throw malformed('content runs past its container');
  return { tag, start: offset, contentStart: pos, end };
}

/** The elements inside a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.contentStart;
  // Bounded: each step advances by at least the 2-byte header.
  while (pos < parent.end) {
    const t = readTlv(buf, pos, parent.end);
    out.push(t);
    pos = t.end;
  }
  return out;
}

/** Reads a whole buffer as exactly one TLV of the given tag. */
export function readWhole(buf: Uint8Array, tag: number): Tlv {
  const t = readTlv(buf, 0);
  if (t.tag !== tag || t.end !== buf.length) throw malformed(`expected one element of tag 0x${tag.toString(16)}`);
  return t;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined || t.tag !== tag) throw malformed(`${what} missing`);
  return t;
}

export function slice(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.start, t.end);
}

export function content(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.contentStart, t.end);
}

/** Decodes an OBJECT IDENTIFIER's content octets to dotted form. */
export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw malformed('empty OID');
  const first = bytes[0]!;
  const parts: number[] = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let v = 0;
  for (let i = 1; i < bytes.length; i++) {
    const b = bytes[i]!;
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER) throw malformed('OID arc too large');
    if ((b & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

// ---------------------------------------------------------------------------------------------
// PEM

export function pemToDer(pem: string, label: string): Buffer {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`);
  const m = re.exec(pem);
  if (m === null) throw malformed(`no PEM block "${label}"`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every certificate in a PEM bundle, each normalised to its own PEM string, in order. */
export function splitPemCertificates(text: string): string[] {
  const out: string[] = [];
  const re = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g;
  for (const m of text.matchAll(re)) out.push(derToPem(pemToDer(m[0], 'CERTIFICATE'), 'CERTIFICATE'));
  return out;
}

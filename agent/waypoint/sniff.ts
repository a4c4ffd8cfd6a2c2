/**
 * What the bytes of a tunnelled stream are, from its first bytes (pure): the HTTP/2 connection
 * preface (prior knowledge, h2c and gRPC), an HTTP/1.x request line, or anything else (relayed
 * as L4). `more` asks for more bytes; the caller bounds the wait (WAYPOINT_SNIFF_TIMEOUT_MS) and
 * the size (WAYPOINT_SNIFF_MAX_BYTES), after which it is L4.
 */

export type Sniffed = 'h2' | 'http1' | 'l4' | 'more';

/** RFC 9113 section 3.4. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** The longest method token accepted (`PROPPATCH`, `UPDATEREDIRECTREF`, extension methods). */
const MAX_METHOD = 32;
const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const VERSION_PREFIX = Buffer.from('HTTP/1.', 'latin1');

function isTokenChar(c: number): boolean {
  // RFC 9110 tchar, restricted to what request methods use in practice: A-Z, '-', '_'.
  return (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f;
}

export function sniff(buf: Buffer, maxBytes: number): Sniffed {
  const n = buf.length;
  if (n === 0) return 'more';
  // Still a prefix of the preface (which also looks like a `PRI` request line): wait for all 24.
  const p = Math.min(n, H2_PREFACE.length);
  if (buf.compare(H2_PREFACE, 0, p, 0, p) === 0) return n >= H2_PREFACE.length ? 'h2' : 'more';
  return requestLine(buf, Math.min(n, maxBytes), n >= maxBytes);
}

/** `METHOD SP target SP HTTP/1.x CRLF`, checked as far as the bytes go. */
function requestLine(buf: Buffer, n: number, atLimit: boolean): Sniffed {
  let i = 0;
  while (i < n && isTokenChar(buf[i]!)) i++;
  if (i === n) return i <= MAX_METHOD && !atLimit ? 'more' : 'l4';
  if (i === 0 || i > MAX_METHOD || buf[i] !== SP) return 'l4';
  i++;
  const targetStart = i;
  // The request target: visible ASCII (no controls, no space).
  while (i < n && buf[i]! > SP && buf[i]! < 0x7f) i++;
  if (i === n) return atLimit ? 'l4' : 'more';
  if (i === targetStart || buf[i] !== SP) return 'l4';
  i++;
  for (let v = 0; v < VERSION_PREFIX.length; v++, i++) {
    if (i === n) return atLimit ? 'l4' : 'more';
    if (buf[i] !== VERSION_PREFIX[v]) return 'l4';
  }
  if (i === n) return atLimit ? 'l4' : 'more';
  if (buf[i] !== 0x30 && buf[i] !== 0x31) return 'l4';
  i++;
  if (i === n) return atLimit ? 'l4' : 'more';
  if (buf[i] !== CR) return 'l4';
  i++;
  if (i === n) return atLimit ? 'l4' : 'more';
  return buf[i] === LF ? 'http1' : 'l4';
}

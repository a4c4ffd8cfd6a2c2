/**
 * IP addresses and CIDR blocks as integers: IPv4 as one uint32, IPv6 as four uint32 words.
 * Parsing is a single pass over the string without regex, split or allocation, because the
 * engine parses the connection's addresses on every decision that looks at them.
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack Node socket reports for an IPv4
 * peer) is treated as the IPv4 address, so `198.18.0.0/15` matches it.
 */

/** Address family result of parseIp: 0 = not an address. */
export const FAMILY_NONE = 0;
export const FAMILY_V4 = 4;
export const FAMILY_V6 = 6;
export type Family = typeof FAMILY_NONE | typeof FAMILY_V4 | typeof FAMILY_V6;

/** A parsed CIDR block; `words`/`masks` have 1 entry for IPv4, 4 for IPv6, already masked. */
export interface Cidr {
  readonly family: typeof FAMILY_V4 | typeof FAMILY_V6;
  readonly prefix: number;
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly m0: number;
  readonly m1: number;
  readonly m2: number;
  readonly m3: number;
  /** Canonical text, for messages and config dumps. */
  readonly text: string;
}

function parseV4(s: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      if (dots > 3) return -1;
    } else if (c >= 48 && c <= 57) {
      // A leading zero would be read as octal by some parsers and decimal by others: refuse it.
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses s[start,end) as an IPv4 or IPv6 address into `out` (out[0] for IPv4, out[0..3] for
 * IPv6). Returns the family, or FAMILY_NONE when the text is not an address.
 */
export function parseIpInto(s: string, start: number, end: number, out: Uint32Array): Family {
  let hasColon = false;
  for (let i = start; i < end; i++) {
    if (s.charCodeAt(i) === 58) {
      hasColon = true;
      break;
    }
  }
  if (!hasColon) {
    const v = parseV4(s, start, end);
    if (v < 0) return FAMILY_NONE;
    out[0] = v;
    return FAMILY_V4;
  }
  // A zone index (fe80::1%eth0) does not take part in matching.
  for (let i = start; i < end; i++) {
    if (s.charCodeAt(i) === 37 /* % */) {
      end = i;
      break;
    }
  }
  // The 16-bit groups, per call: no module state, so parsing is reentrant (IPv6 only pays it).
  const groups = new Uint16Array(8);
  let n = 0; // groups written
  let gap = -1; // index in `groups` where "::" stands
  let i = start;
  if (end - start >= 2 && s.charCodeAt(i) === 58 && s.charCodeAt(i + 1) === 58) {
    gap = 0;
    i += 2;
  } else if (s.charCodeAt(i) === 58) {
    return FAMILY_NONE;
  }
  while (i < end) {
    if (n >= 8) return FAMILY_NONE;
    // Find the end of this group, and whether it is a dotted IPv4 tail.
    let j = i;
    let dotted = false;
    while (j < end && s.charCodeAt(j) !== 58) {
      if (s.charCodeAt(j) === 46) dotted = true;
      j++;
    }
    if (dotted) {
      if (j !== end || n > 6) return FAMILY_NONE;
      const v4 = parseV4(s, i, j);
      if (v4 < 0) return FAMILY_NONE;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = j;
      break;
    }
    const len = j - i;
    if (len === 0 || len > 4) return FAMILY_NONE;
    let g = 0;
    for (let k = i; k < j; k++) {
      const h = hexValue(s.charCodeAt(k));
      if (h < 0) return FAMILY_NONE;
      g = g * 16 + h;
    }
    groups[n++] = g;
    i = j;
    if (i < end) {
      // At a colon: "::" marks the gap, a single ":" separates groups.
      if (i + 1 < end && s.charCodeAt(i + 1) === 58) {
        if (gap !== -1) return FAMILY_NONE;
        gap = n;
        i += 2;
      } else {
        i += 1;
        if (i === end) return FAMILY_NONE; // trailing single colon
      }
    }
  }
  if (gap === -1) {
    if (n !== 8) return FAMILY_NONE;
  } else {
    if (n > 7) return FAMILY_NONE;
    const move = n - gap;
    for (let k = 0; k < move; k++) groups[7 - k] = groups[n - 1 - k]!;
    for (let k = gap; k < 8 - move; k++) groups[k] = 0;
  }
  // ::ffff:a.b.c.d is an IPv4 peer seen through a dual-stack socket.
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    out[0] = (groups[6]! * 65536 + groups[7]!) >>> 0;
    return FAMILY_V4;
  }
  out[0] = (groups[0]! * 65536 + groups[1]!) >>> 0;
  out[1] = (groups[2]! * 65536 + groups[3]!) >>> 0;
  out[2] = (groups[4]! * 65536 + groups[5]!) >>> 0;
  out[3] = (groups[6]! * 65536 + groups[7]!) >>> 0;
  return FAMILY_V6;
}

/** Parses an address string; returns the family (FAMILY_NONE if invalid) and fills `out`. */
export function parseIp(s: string, out: Uint32Array): Family {
  return parseIpInto(s, 0, s.length, out);
}

function maskWord(prefix: number, word: number): number {
  const bits = Math.max(0, Math.min(32, prefix - word * 32));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or an IPv6 CIDR; undefined when invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addrEnd = slash === -1 ? text.length : slash;
  if (text.indexOf('%') !== -1) return undefined; // zones make no sense in a policy
  const scratch = new Uint32Array(4); // compile time only: a fresh one costs nothing that matters
  let family = parseIpInto(text, 0, addrEnd, scratch);
  if (family === FAMILY_NONE) return undefined;
  const mapped = family === FAMILY_V4 && text.indexOf(':') !== -1;
  let max = family === FAMILY_V4 ? (mapped ? 128 : 32) : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > max) return undefined;
  }
  if (mapped) {
    // ::ffff:a.b.c.d/n covers IPv4 space only when n >= 96; below that it spans IPv6 too.
    if (prefix < 96) {
      family = FAMILY_V6;
      scratch[3] = scratch[0]!;
      scratch[0] = 0;
      scratch[1] = 0;
      scratch[2] = 0xffff;
    } else {
      prefix -= 96;
    }
    max = family === FAMILY_V4 ? 32 : 128;
  }
  if (family === FAMILY_V4) {
    const m0 = maskWord(prefix, 0);
    const w0 = (scratch[0]! & m0) >>> 0;
    return { family, prefix, w0, w1: 0, w2: 0, w3: 0, m0, m1: 0, m2: 0, m3: 0, text: `${formatV4(w0)}/${prefix}` };
  }
  const m0 = maskWord(prefix, 0);
  const m1 = maskWord(prefix, 1);
  const m2 = maskWord(prefix, 2);
  const m3 = maskWord(prefix, 3);
  const w0 = (scratch[0]! & m0) >>> 0;
  const w1 = (scratch[1]! & m1) >>> 0;
  const w2 = (scratch[2]! & m2) >>> 0;
  const w3 = (scratch[3]! & m3) >>> 0;
  return { family: FAMILY_V6, prefix, w0, w1, w2, w3, m0, m1, m2, m3, text: `${formatV6(w0, w1, w2, w3)}/${prefix}` };
}

export function isIpOrCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

/** Does the parsed address (family + words from parseIp) fall into the block? */
export function cidrContains(c: Cidr, family: Family, addr: Uint32Array): boolean {
  if (c.family !== family) return false;
  if (family === FAMILY_V4) return ((addr[0]! & c.m0) >>> 0) === c.w0;
  return (
    ((addr[0]! & c.m0) >>> 0) === c.w0 &&
    ((addr[1]! & c.m1) >>> 0) === c.w1 &&
    ((addr[2]! & c.m2) >>> 0) === c.w2 &&
    ((addr[3]! & c.m3) >>> 0) === c.w3
  );
}

function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function formatV6(w0: number, w1: number, w2: number, w3: number): string {
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

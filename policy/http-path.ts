/**
 * The path a waypoint's authorization looks at, normalized as Istio's default (`BASE`, Envoy's
 * `normalize_path`) does: without query and fragment, percent-encoded unreserved characters
 * decoded (`%41` is `A`, `%2e` is `.`) and other escapes upper-cased, `\` read as `/`, and dot
 * segments removed (RFC 3986 5.2.4: `/a/./b/../c` is `/a/c`). Repeated slashes are kept and
 * `%2F` stays encoded, as in BASE. A `%` that starts no escape becomes `%25` (where Envoy would
 * keep it): decoding once must not make a new escape (`/%%32e` would become `/%2e`, a dot to the
 * next decoder), so normalizing is idempotent. The waypoint forwards this same path, so the backend is asked
 * for exactly what was authorized (a policy on `/admin*` cannot be passed by `/x/../admin`).
 * Pure, no allocation when the path is already normal (the common case).
 */

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

const HEX = '0123456789ABCDEF';

function decodeUnreserved(p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 92 /* \ */) {
      out += '/';
      continue;
    }
    if (c === 37 /* % */ && i + 2 < p.length) {
      const hi = hexValue(p.charCodeAt(i + 1));
      const lo = hexValue(p.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        const v = hi * 16 + lo;
        out += isUnreserved(v) ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`;
        i += 2;
        continue;
      }
    }
    out += c === 37 ? '%25' : p[i];
  }
  return out;
}

function removeDotSegments(p: string): string {
  const segments = p.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segments[i]!;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      if (i === last) out.push(''); // `/a/b/..` is `/a/`
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

/** The normalized path of a request target (`/a/../b?x=1` -> `/b`); a non-origin form (`*`) is returned cut, unchanged. */
export function normalizeRequestPath(target: string): string {
  let end = target.length;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
  }
  const p = end === target.length ? target : target.slice(0, end);
  if (p.charCodeAt(0) !== 47 /* / */ && p.charCodeAt(0) !== 92) return p;
  if (p.indexOf('%') === -1 && p.indexOf('\\') === -1 && p.indexOf('/.') === -1) return p;
  const decoded = decodeUnreserved(p);
  return decoded.indexOf('/.') === -1 ? decoded : removeDotSegments(decoded);
}

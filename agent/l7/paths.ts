/**
 * Path arithmetic of the Gateway API: segment-wise prefix matches, ReplacePrefixMatch, the
 * Location of a redirect, header modifiers composed and applied. Pure string functions.
 */
import { LINEAR_ENGINE } from './regex.js';
import type { HeaderModifier, HeaderName, PathModifier } from './types.js';

/** A PathPrefix value as it is compared: without its trailing `/` (`/` itself becomes ''). */
export function normalizePrefix(prefix: string): string {
  return prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
}

/**
 * Segment-wise prefix match on a normalized prefix: `/foo` matches `/foo`, `/foo/` and
 * `/foo/bar`, never `/foobar`. Case-sensitive.
 */
export function prefixMatches(normalized: string, path: string): boolean {
  if (normalized === '') return true;
  if (!path.startsWith(normalized)) return false;
  return path.length === normalized.length || path.charCodeAt(normalized.length) === 0x2f;
}

/**
 * ReplacePrefixMatch: the matched prefix of `path` replaced by `replacement`, as the spec's
 * table says (`/foo/bar` with prefix `/foo` and replacement `/xyz` is `/xyz/bar`; with `''` or
 * `/` it is `/bar`; `/foo` becomes `/xyz`, `/foo/` becomes `/xyz/`). A path that does not start
 * with the prefix (a second rewrite after the first changed it) is left as it is.
 */
export function replacePrefix(path: string, normalizedPrefix: string, replacement: string): string {
  if (!prefixMatches(normalizedPrefix, path)) return path;
  const rest = path.slice(normalizedPrefix.length);
  const out = normalizePrefix(replacement) + rest;
  return out === '' ? '/' : out.startsWith('/') ? out : `/${out}`;
}

/** The path after a path modifier; `matchedPrefix` is the normalized PathPrefix of the match. */
export function modifyPath(path: string, modifier: PathModifier | undefined, matchedPrefix: string | undefined): string {
  if (modifier === undefined) return path;
  if (modifier.type === 'ReplaceFullPath') return modifier.value;
  if (modifier.type === 'ReplaceCharPrefix') return path.startsWith(modifier.prefix) ? modifier.value + path.slice(modifier.prefix.length) : path;
  if (modifier.type === 'RegexReplace') return path.replace(searchRegex(modifier.pattern), jsSubstitution(modifier.substitution));
  return replacePrefix(path, matchedPrefix ?? '', modifier.value);
}

/** Search patterns of RegexReplace, compiled once each (validation allowed them on the linear-time engine only). */
const SEARCH = new Map<string, RegExp>();
const SUBSTITUTIONS = new Map<string, string>();

function searchRegex(pattern: string): RegExp {
  let r = SEARCH.get(pattern);
  if (r === undefined) SEARCH.set(pattern, (r = linearSearchRegex(pattern)!));
  return r;
}

/** RE2's `\1` group references as JavaScript's `$1`; a literal `$` kept literal. */
export function jsSubstitution(s: string): string {
  let out = SUBSTITUTIONS.get(s);
  if (out === undefined) SUBSTITUTIONS.set(s, (out = s.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1')));
  return out;
}

/**
 * A global search regex on V8's linear-time engine, or undefined when this Node or that engine
 * does not take the pattern: an unanchored search on the backtracking engine can be quadratic in
 * the path length even for patterns that are linear when anchored.
 */
export function linearSearchRegex(pattern: string): RegExp | undefined {
  if (!LINEAR_ENGINE) return undefined;
  try {
    return new RegExp(pattern, 'lg');
  } catch {
    return undefined;
  }
}

/** The host part of an authority (`a.b:8080` -> `a.b`, `[::1]:80` -> `[::1]`). */
export function hostOf(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end === -1 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(':');
  return colon === -1 ? authority : authority.slice(0, colon);
}

const WELL_KNOWN_PORT: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * The Location of a RequestRedirect (Gateway API HTTPRequestRedirectFilter):
 * - scheme: the filter's, else the request's (`http`: mesh traffic is plaintext inside HBONE);
 * - host: the filter's hostname, else the request's Host without its port;
 * - port: the filter's; else, when the filter sets a scheme, that scheme's well-known port;
 *   else the port the request was addressed to (the Service port: the mesh's "listener");
 *   left out when it is the scheme's well-known port (http 80, https 443);
 * - path: after the filter's path modifier; the query is kept.
 */
export function redirectLocation(
  filter: { readonly scheme: 'http' | 'https' | undefined; readonly hostname: string | undefined; readonly port: number | undefined },
  path: string,
  query: string,
  authority: string,
  servicePort: number,
): string {
  const scheme = filter.scheme ?? 'http';
  const host = filter.hostname ?? hostOf(authority);
  const port = filter.port ?? (filter.scheme !== undefined ? WELL_KNOWN_PORT[filter.scheme]! : servicePort);
  const portPart = port === WELL_KNOWN_PORT[scheme] ? '' : `:${port}`;
  return `${scheme}://${host}${portPart}${path}${query === '' ? '' : `?${query}`}`;
}

export const EMPTY_MODIFIER: HeaderModifier = Object.freeze({ set: [], add: [], remove: [] });

/**
 * One modifier with the effect of applying `first`, then `second`, when a modifier is applied
 * as applyHeaderModifier does (remove, then set, then add: Envoy's order).
 */
export function composeHeaderModifiers(first: HeaderModifier | undefined, second: HeaderModifier | undefined): HeaderModifier | undefined {
  if (first === undefined) return second;
  if (second === undefined) return first;
  let set = [...first.set];
  let add = [...first.add];
  const remove = [...first.remove];
  for (const name of second.remove) {
    set = set.filter(([n]) => n !== name);
    add = add.filter(([n]) => n !== name);
    if (!remove.includes(name)) remove.push(name);
  }
  for (const [name, value] of second.set) {
    set = set.filter(([n]) => n !== name);
    add = add.filter(([n]) => n !== name);
    set.push([name, value]);
  }
  for (const entry of second.add) add.push(entry);
  return { set, add, remove };
}

export type HeaderMap = Record<HeaderName, string | string[] | undefined>;

/**
 * Applies a modifier to a header map (lower-case names, node's shape) and returns a new map:
 * remove first, then set (replaces every value), then add (appends a value; an existing value
 * list grows, as `my-header: foo` + add `bar` gives `foo,bar` on the wire).
 */
export function applyHeaderModifier(headers: Readonly<Record<string, string | readonly string[] | undefined>>, mod: HeaderModifier | undefined): HeaderMap {
  const out: HeaderMap = {};
  for (const k of Object.keys(headers)) {
    const v = headers[k];
    out[k] = Array.isArray(v) ? [...(v as readonly string[])] : (v as string | undefined);
  }
  if (mod === undefined) return out;
  for (const name of mod.remove) delete out[name];
  for (const [name, value] of mod.set) out[name] = value;
  for (const [name, value] of mod.add) {
    const cur = out[name];
    if (cur === undefined) out[name] = value;
    else if (Array.isArray(cur)) cur.push(value);
    else out[name] = `${cur},${value}`;
  }
  return out;
}

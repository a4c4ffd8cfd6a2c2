/**
 * AuthorizationPolicy: compilation of a validated object into match structures, and the matching
 * itself (the per-connection hot path). The structure mirrors ztunnel's: a policy matches when any
 * rule matches; a rule is a list of clauses that must all match (its `from`, its `to`, each `when`
 * condition); a clause matches when any of its matches does; a match requires every field it sets.
 *
 * L7 fields (methods, paths, hosts, request principals, remote IPs, HTTP `when` keys) cannot be
 * checked on a TCP connection. As ztunnel does, an ALLOW rule that uses them is dropped (it matches
 * nothing: fail closed), and a DENY rule is kept without them (it denies more: fail closed). AUDIT
 * rules are treated like DENY ones, so auditing never misses a connection it was asked to see.
 *
 * Compiled for a waypoint (`waypoint`, policies with targetRefs), the same structure carries the
 * HTTP fields in each match's `http` part and they are checked against the request of the
 * decision (beginRequestMatch); a match's L4 fields are checked first, as they are cheaper.
 */
import { cidrContains, FAMILY_NONE, parseCidr, parseIp, type Cidr, type Family } from './ip.js';
import { normalizeRequestPath } from './http-path.js';
import {
  HEADER_CONDITION_PREFIX,
  L4_CONDITION_KEYS,
  L7_OPERATION_FIELDS,
  L7_SOURCE_FIELDS,
  type AuthorizationPolicy,
  type ConditionT,
  type OperationT,
  type SourceT,
} from './schema.js';

/** Action codes; small integers so the hot path compares numbers. */
export const ACTION_ALLOW = 0;
export const ACTION_DENY = 1;
export const ACTION_AUDIT = 2;
export type ActionCode = typeof ACTION_ALLOW | typeof ACTION_DENY | typeof ACTION_AUDIT;

/** String match kinds (Istio's `*` forms): 0 exact, 1 prefix (`abc*`), 2 suffix (`*abc`), 3 presence (`*`). */
export interface StringMatcher {
  readonly kind: 0 | 1 | 2 | 3;
  readonly value: string;
}

/**
 * The HTTP part of a match (waypoint enforcement only; policies compiled for L4 have none).
 * null = not set. Hosts are lower-cased at compile time and matched against the lower-cased
 * authority; paths against the normalized path (http-path.ts).
 */
export interface HttpMatch {
  readonly methods: readonly StringMatcher[] | null;
  readonly notMethods: readonly StringMatcher[] | null;
  readonly paths: readonly StringMatcher[] | null;
  readonly notPaths: readonly StringMatcher[] | null;
  readonly hosts: readonly StringMatcher[] | null;
  readonly notHosts: readonly StringMatcher[] | null;
  readonly remoteIps: readonly Cidr[] | null;
  readonly notRemoteIps: readonly Cidr[] | null;
  /** `request.headers[NAME]` condition: the lower-case name, or null. */
  readonly header: string | null;
  readonly headerValues: readonly StringMatcher[] | null;
  readonly notHeaderValues: readonly StringMatcher[] | null;
}

/** One `from` source, `to` operation or `when` condition. null = not set. */
export interface Match {
  readonly principals: readonly StringMatcher[] | null;
  readonly notPrincipals: readonly StringMatcher[] | null;
  readonly namespaces: readonly StringMatcher[] | null;
  readonly notNamespaces: readonly StringMatcher[] | null;
  readonly sourceIps: readonly Cidr[] | null;
  readonly notSourceIps: readonly Cidr[] | null;
  readonly destinationIps: readonly Cidr[] | null;
  readonly notDestinationIps: readonly Cidr[] | null;
  readonly ports: readonly number[] | null;
  readonly notPorts: readonly number[] | null;
  /** HTTP attributes; always null in a policy compiled for L4. */
  readonly http: HttpMatch | null;
}

/** Clauses that must all match; each clause is a list of alternatives. No clauses: matches anything. */
export type CompiledRule = readonly (readonly Match[])[];

export interface CompiledAuthorizationPolicy {
  /** `namespace/name` */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly action: ActionCode;
  /** matchLabels, or null for a namespace-wide (root namespace: mesh-wide) policy. */
  readonly selector: readonly (readonly [string, string])[] | null;
  /** No rules left: the policy matches nothing. */
  readonly rules: readonly CompiledRule[];
  /** L7 fields found (sorted), empty when the policy is pure L4. */
  readonly l7Fields: readonly string[];
}

const EMPTY_MATCH: Match = {
  principals: null,
  notPrincipals: null,
  namespaces: null,
  notNamespaces: null,
  sourceIps: null,
  notSourceIps: null,
  destinationIps: null,
  notDestinationIps: null,
  ports: null,
  notPorts: null,
  http: null,
};

const EMPTY_HTTP: HttpMatch = {
  methods: null,
  notMethods: null,
  paths: null,
  notPaths: null,
  hosts: null,
  notHosts: null,
  remoteIps: null,
  notRemoteIps: null,
  header: null,
  headerValues: null,
  notHeaderValues: null,
};

function stringMatchers(values: readonly string[] | undefined, lowerCase = false): StringMatcher[] | null {
  if (values === undefined || values.length === 0) return null;
  return values.map((raw): StringMatcher => {
    const v = lowerCase ? raw.toLowerCase() : raw;
    if (v === '*') return { kind: 3, value: '' };
    if (v.startsWith('*')) return { kind: 2, value: v.slice(1) };
    if (v.endsWith('*')) return { kind: 1, value: v.slice(0, -1) };
    return { kind: 0, value: v };
  });
}

function cidrs(values: readonly string[] | undefined): Cidr[] | null {
  if (values === undefined || values.length === 0) return null;
  // Validation has already refused anything parseCidr rejects.
  return values.map((v) => parseCidr(v)!);
}

function ports(values: readonly string[] | undefined): number[] | null {
  if (values === undefined || values.length === 0) return null;
  return values.map(Number);
}

/** Where a policy is enforced: a node agent (HTTP fields fail closed) or a waypoint (HTTP fields checked). */
export type Enforcement = 'l4' | 'waypoint';

function httpOrNull(h: HttpMatch): HttpMatch | null {
  for (const v of Object.values(h)) if (v !== null) return h;
  return null;
}

function sourceMatch(s: SourceT, at: Enforcement): Match {
  return {
    ...EMPTY_MATCH,
    principals: stringMatchers(s.principals),
    notPrincipals: stringMatchers(s.notPrincipals),
    namespaces: stringMatchers(s.namespaces),
    notNamespaces: stringMatchers(s.notNamespaces),
    sourceIps: cidrs(s.ipBlocks),
    notSourceIps: cidrs(s.notIpBlocks),
    // requestPrincipals (JWT) never reach here at a waypoint: validation refuses them there.
    http: at === 'l4' ? null : httpOrNull({ ...EMPTY_HTTP, remoteIps: cidrs(s.remoteIpBlocks), notRemoteIps: cidrs(s.notRemoteIpBlocks) }),
  };
}

function operationMatch(o: OperationT, at: Enforcement): Match {
  const http =
    at === 'l4'
      ? null
      : httpOrNull({
          ...EMPTY_HTTP,
          methods: stringMatchers(o.methods),
          notMethods: stringMatchers(o.notMethods),
          paths: stringMatchers(o.paths),
          notPaths: stringMatchers(o.notPaths),
          hosts: stringMatchers(o.hosts, true),
          notHosts: stringMatchers(o.notHosts, true),
        });
  return { ...EMPTY_MATCH, ports: ports(o.ports), notPorts: ports(o.notPorts), http };
}

/** A waypoint's `when` keys beyond L4: remote.ip and request.headers[NAME]; null for any other. */
function httpConditionMatch(c: ConditionT): Match | null {
  if (c.key === 'remote.ip') return { ...EMPTY_MATCH, http: { ...EMPTY_HTTP, remoteIps: cidrs(c.values), notRemoteIps: cidrs(c.notValues) } };
  if (c.key.startsWith(HEADER_CONDITION_PREFIX) && c.key.endsWith(']')) {
    const header = c.key.slice(HEADER_CONDITION_PREFIX.length, -1).toLowerCase();
    return { ...EMPTY_MATCH, http: { ...EMPTY_HTTP, header, headerValues: stringMatchers(c.values), notHeaderValues: stringMatchers(c.notValues) } };
  }
  return null;
}

const L4_KEYS: ReadonlySet<string> = new Set(L4_CONDITION_KEYS);

function conditionMatch(c: ConditionT): Match {
  switch (c.key) {
    case 'source.ip':
      return { ...EMPTY_MATCH, sourceIps: cidrs(c.values), notSourceIps: cidrs(c.notValues) };
    case 'destination.ip':
      return { ...EMPTY_MATCH, destinationIps: cidrs(c.values), notDestinationIps: cidrs(c.notValues) };
    case 'destination.port':
      return { ...EMPTY_MATCH, ports: ports(c.values), notPorts: ports(c.notValues) };
    case 'source.principal':
      return { ...EMPTY_MATCH, principals: stringMatchers(c.values), notPrincipals: stringMatchers(c.notValues) };
    case 'source.namespace':
      return { ...EMPTY_MATCH, namespaces: stringMatchers(c.values), notNamespaces: stringMatchers(c.notValues) };
    default:
      return EMPTY_MATCH;
  }
}

function actionCode(action: string | undefined): ActionCode {
  if (action === 'DENY') return ACTION_DENY;
  if (action === 'AUDIT') return ACTION_AUDIT;
  return ACTION_ALLOW;
}

/**
 * Compiles a validated AuthorizationPolicy (see validatePolicyObject) for a node agent (`l4`:
 * HTTP fields fail closed, see above) or for a waypoint (`waypoint`: HTTP fields are matched;
 * validation has refused the fields a waypoint cannot check in policies with targetRefs).
 */
export function compileAuthorizationPolicy(p: AuthorizationPolicy, defaultNamespace: string, at: Enforcement = 'l4'): CompiledAuthorizationPolicy {
  const namespace = p.metadata.namespace ?? defaultNamespace;
  const spec = p.spec ?? {};
  const action = actionCode(spec.action);
  const l7 = new Set<string>();
  const rules: CompiledRule[] = [];
  for (const rule of spec.rules ?? []) {
    let ruleHasL7 = false;
    let failClosed = false;
    const clauses: Match[][] = [];
    if (rule.from !== undefined) {
      const alternatives: Match[] = [];
      for (const f of rule.from) {
        for (const field of L7_SOURCE_FIELDS) {
          if ((f.source[field]?.length ?? 0) > 0) {
            l7.add(field);
            ruleHasL7 = true;
            // JWT: refused by validation in waypoint policies; unvalidated, it fails closed.
            if (at === 'waypoint' && (field === 'requestPrincipals' || field === 'notRequestPrincipals')) failClosed = true;
          }
        }
        alternatives.push(sourceMatch(f.source, at));
      }
      clauses.push(alternatives);
    }
    if (rule.to !== undefined) {
      const alternatives: Match[] = [];
      for (const t of rule.to) {
        for (const field of L7_OPERATION_FIELDS) {
          if ((t.operation[field]?.length ?? 0) > 0) {
            l7.add(field);
            ruleHasL7 = true;
          }
        }
        alternatives.push(operationMatch(t.operation, at));
      }
      clauses.push(alternatives);
    }
    for (const c of rule.when ?? []) {
      if (!L4_KEYS.has(c.key)) {
        l7.add(c.key);
        ruleHasL7 = true;
        const http = at === 'waypoint' ? httpConditionMatch(c) : null;
        // A key the waypoint cannot check was refused by validation; reaching here without it
        // (compiled unvalidated) treats it as at L4: failing closed, never as a match.
        if (http !== null) clauses.push([http]);
        else if (at === 'waypoint') failClosed = true;
        continue; // L4 DENY/AUDIT: the condition is ignored; L4 ALLOW: the whole rule goes below
      }
      clauses.push([conditionMatch(c)]);
    }
    if (ruleHasL7 && (at === 'l4' || failClosed) && action === ACTION_ALLOW) continue;
    rules.push(clauses);
  }
  const labels = spec.selector?.matchLabels;
  const selector = labels !== undefined && Object.keys(labels).length > 0 ? Object.entries(labels).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)) : null;
  return { key: `${namespace}/${p.metadata.name}`, namespace, name: p.metadata.name, action, selector, rules, l7Fields: [...l7].sort() };
}

/** The warning text for a policy with L7 fields, modelled on istiod's status message for ztunnel. */
export function l7Warning(p: CompiledAuthorizationPolicy): string {
  const found = p.l7Fields.join(', ');
  const head = `AuthorizationPolicy ${p.key}: L4 enforcement cannot check HTTP attributes (found: ${found}); attach the policy to a waypoint (targetRefs) to enforce them.`;
  if (p.action === ACTION_ALLOW) return `${head} Within an ALLOW policy, rules using them are dropped and match nothing. This is more restrictive than requested.`;
  if (p.action === ACTION_DENY) return `${head} The DENY policy is enforced without the HTTP conditions. This is more restrictive than requested.`;
  return `${head} The AUDIT policy is evaluated without the HTTP conditions, so it audits more than requested.`;
}

// ---------------------------------------------------------------------------------------------
// Matching. The connection's derived values (parsed addresses, principal without `spiffe://`,
// namespace) are computed at most once per decision and only if a match needs them. They live in
// the decision's own MatchContext, never in module state: a decision started while another is
// under way (a caller deciding from within another decision's callback, two decisions built side
// by side) cannot see or overwrite the other's values.

/** What the engine knows about a connection arriving at a workload. */
export interface ConnectionInfo {
  /** The client's address as the socket reports it (IPv4, IPv6 or IPv4-mapped IPv6). */
  readonly sourceIp: string;
  /**
   * The peer's SPIFFE ID from its verified certificate, `spiffe://cluster.local/ns/x/sa/y`
   * (the form without `spiffe://` is accepted too). Absent for plaintext.
   */
  readonly sourcePrincipal?: string | undefined;
  /**
   * The peer's namespace from its verified identity. Ignored without `sourcePrincipal`
   * (namespaces require mTLS, as in Istio); derived from the principal when absent.
   */
  readonly sourceNamespace?: string | undefined;
  /**
   * The trust domain of the workload deciding (`cluster.local`). When given, a peer whose
   * principal is of another trust domain has no namespace: `namespaces` never matches
   * `spiffe://evil.example/ns/prod/sa/x` for the prod of this mesh (F6 of issue 10).
   */
  readonly trustDomain?: string | undefined;
  readonly destinationIp: string;
  readonly destinationPort: number;
}

/**
 * What a waypoint knows about one HTTP request: its connection (the client's verified identity
 * and address, the address and port the request was sent to: a Service VIP and service port)
 * and the request head. Field names follow agent/l7/types.ts's RequestView.
 */
export interface HttpRequestInfo extends ConnectionInfo {
  /** As received (node gives it upper case); matched case-sensitively, as in Istio. */
  readonly method: string;
  /** The request target's path, as received (a query or fragment is cut off before matching). */
  readonly path: string;
  /** `:authority` or `Host`, as received; matched case-insensitively, port included. */
  readonly authority: string;
  /** Lower-case names; repeated headers as arrays (matched joined by `,`, as Envoy does). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /**
   * The original client address (`remote.ip`, `remoteIpBlocks`): the trusted `forwarded` value
   * when the connection came through a waypoint identity, else absent, and then `sourceIp`.
   */
  readonly remoteIp?: string | undefined;
}

/** One decision's connection and what has been derived from it so far. Make one with beginMatch(). */
export class MatchContext {
  conn: ConnectionInfo;
  /** Parsed addresses (their arrays are kept when the context is reused). */
  readonly srcAddr = new Uint32Array(4);
  readonly dstAddr = new Uint32Array(4);
  srcFamily: Family | -1 = -1; // -1: not parsed yet
  dstFamily: Family | -1 = -1;
  principal: string | undefined = undefined; // undefined: not derived yet
  namespace: string | undefined = undefined;
  /** The request when deciding at a waypoint, else null (an L4 decision). */
  request: HttpRequestInfo | null = null;
  readonly remoteAddr = new Uint32Array(4);
  remoteFamily: Family | -1 = -1;
  host: string | undefined = undefined; // lower-cased authority
  path: string | undefined = undefined; // normalized path

  constructor(conn: ConnectionInfo) {
    this.conn = conn;
  }
}

const NO_CONNECTION: ConnectionInfo = { sourceIp: '', destinationIp: '', destinationPort: 0 };
/**
 * Contexts no decision holds, for reuse (the hot path allocates nothing). A context is in here
 * only between endMatch() and the next beginMatch(): while a decision runs it owns its context
 * alone, so decisions started inside others never share one.
 */
const idle: MatchContext[] = [];

/** Starts a decision for `c`: pass the context to matchesPolicy for each policy of that decision. */
export function beginMatch(c: ConnectionInfo): MatchContext {
  const x = idle.pop();
  if (x === undefined) return new MatchContext(c);
  x.conn = c;
  x.srcFamily = -1;
  x.dstFamily = -1;
  x.principal = undefined;
  x.namespace = undefined;
  return x;
}

/** Starts a waypoint decision for one HTTP request (policies compiled with `waypoint`). */
export function beginRequestMatch(r: HttpRequestInfo): MatchContext {
  const x = beginMatch(r);
  x.request = r;
  return x;
}

/** Ends the decision of `x` (optional: a context not ended is garbage collected). Do not use `x` after. */
export function endMatch(x: MatchContext): void {
  x.conn = NO_CONNECTION;
  if (x.request !== null) {
    // Only request decisions derive these; an L4 decision leaves them as they were (reset).
    x.request = null;
    x.remoteFamily = -1;
    x.host = undefined;
    x.path = undefined;
  }
  if (idle.length < 16) idle.push(x);
}

function peerPrincipal(x: MatchContext): string {
  if (x.principal === undefined) {
    const p = x.conn.sourcePrincipal;
    x.principal = p === undefined ? '' : p.startsWith('spiffe://') ? p.slice(9) : p;
  }
  return x.principal;
}

function peerNamespace(x: MatchContext): string {
  if (x.namespace === undefined) {
    const p = peerPrincipal(x);
    if (p === '' || !inTrustDomain(p, x.conn.trustDomain)) x.namespace = '';
    else if (x.conn.sourceNamespace !== undefined) x.namespace = x.conn.sourceNamespace;
    else {
      // <trust-domain>/ns/<namespace>/sa/<service-account>
      const at = p.indexOf('/ns/');
      const end = at === -1 ? -1 : p.indexOf('/', at + 4);
      x.namespace = at === -1 ? '' : end === -1 ? p.slice(at + 4) : p.slice(at + 4, end);
    }
  }
  return x.namespace;
}

/** Whether principal `p` (without `spiffe://`) is `<trustDomain>/...`; true when none is given. */
function inTrustDomain(p: string, trustDomain: string | undefined): boolean {
  if (trustDomain === undefined) return true;
  return p.length > trustDomain.length && p.charCodeAt(trustDomain.length) === 47 /* '/' */ && p.startsWith(trustDomain);
}

function anyString(list: readonly StringMatcher[], s: string): boolean {
  for (let i = 0; i < list.length; i++) {
    const m = list[i]!;
    switch (m.kind) {
      case 0:
        if (s === m.value) return true;
        break;
      case 1:
        if (s.length > 0 && s.startsWith(m.value)) return true;
        break;
      case 2:
        if (s.length > 0 && s.endsWith(m.value)) return true;
        break;
      default:
        if (s.length > 0) return true;
    }
  }
  return false;
}

function anySourceIp(x: MatchContext, list: readonly Cidr[]): boolean {
  if (x.srcFamily === -1) x.srcFamily = parseIp(x.conn.sourceIp, x.srcAddr);
  if (x.srcFamily === FAMILY_NONE) return false;
  for (let i = 0; i < list.length; i++) if (cidrContains(list[i]!, x.srcFamily, x.srcAddr)) return true;
  return false;
}

function anyDestinationIp(x: MatchContext, list: readonly Cidr[]): boolean {
  if (x.dstFamily === -1) x.dstFamily = parseIp(x.conn.destinationIp, x.dstAddr);
  if (x.dstFamily === FAMILY_NONE) return false;
  for (let i = 0; i < list.length; i++) if (cidrContains(list[i]!, x.dstFamily, x.dstAddr)) return true;
  return false;
}

function anyPort(list: readonly number[], port: number): boolean {
  for (let i = 0; i < list.length; i++) if (list[i] === port) return true;
  return false;
}

function anyRemoteIp(x: MatchContext, r: HttpRequestInfo, list: readonly Cidr[]): boolean {
  if (x.remoteFamily === -1) x.remoteFamily = parseIp(r.remoteIp ?? r.sourceIp, x.remoteAddr);
  if (x.remoteFamily === FAMILY_NONE) return false;
  for (let i = 0; i < list.length; i++) if (cidrContains(list[i]!, x.remoteFamily, x.remoteAddr)) return true;
  return false;
}

function requestHost(x: MatchContext, r: HttpRequestInfo): string {
  if (x.host === undefined) x.host = r.authority.toLowerCase();
  return x.host;
}

function requestPath(x: MatchContext, r: HttpRequestInfo): string {
  if (x.path === undefined) x.path = normalizeRequestPath(r.path);
  return x.path;
}

/** A header's value as Envoy's matchers see it: repeated headers joined by `,`; '' when absent. */
function headerValue(r: HttpRequestInfo, name: string): string {
  switch (name) {
    case ':authority':
    case 'host':
      return r.authority;
    case ':method':
      return r.method;
    case ':path':
      return r.path;
  }
  const v = r.headers[name];
  if (v === undefined) return '';
  return typeof v === 'string' ? v : v.join(',');
}

function matchHttp(x: MatchContext, h: HttpMatch): boolean {
  const r = x.request;
  // An HTTP condition in a decision without a request (only possible by mixing compile modes)
  // cannot be true: a DENY rule then does not match on it, an ALLOW rule does not allow.
  if (r === null) return false;
  if (h.methods !== null && !anyString(h.methods, r.method)) return false;
  if (h.notMethods !== null && anyString(h.notMethods, r.method)) return false;
  if (h.hosts !== null && !anyString(h.hosts, requestHost(x, r))) return false;
  if (h.notHosts !== null && anyString(h.notHosts, requestHost(x, r))) return false;
  if (h.paths !== null && !anyString(h.paths, requestPath(x, r))) return false;
  if (h.notPaths !== null && anyString(h.notPaths, requestPath(x, r))) return false;
  if (h.header !== null) {
    const v = headerValue(r, h.header);
    if (h.headerValues !== null && !anyString(h.headerValues, v)) return false;
    if (h.notHeaderValues !== null && anyString(h.notHeaderValues, v)) return false;
  }
  if (h.remoteIps !== null && !anyRemoteIp(x, r, h.remoteIps)) return false;
  if (h.notRemoteIps !== null && anyRemoteIp(x, r, h.notRemoteIps)) return false;
  return true;
}

function matchOne(x: MatchContext, m: Match): boolean {
  // Cheapest checks first: ports are integers, identities strings, addresses need parsing.
  const port = x.conn.destinationPort;
  if (m.ports !== null && !anyPort(m.ports, port)) return false;
  if (m.notPorts !== null && anyPort(m.notPorts, port)) return false;
  if (m.principals !== null && !anyString(m.principals, peerPrincipal(x))) return false;
  if (m.notPrincipals !== null && anyString(m.notPrincipals, peerPrincipal(x))) return false;
  if (m.namespaces !== null && !anyString(m.namespaces, peerNamespace(x))) return false;
  if (m.notNamespaces !== null && anyString(m.notNamespaces, peerNamespace(x))) return false;
  if (m.sourceIps !== null && !anySourceIp(x, m.sourceIps)) return false;
  if (m.notSourceIps !== null && anySourceIp(x, m.notSourceIps)) return false;
  if (m.destinationIps !== null && !anyDestinationIp(x, m.destinationIps)) return false;
  if (m.notDestinationIps !== null && anyDestinationIp(x, m.notDestinationIps)) return false;
  if (m.http !== null && !matchHttp(x, m.http)) return false;
  return true;
}

/** Does the connection of `x` (from beginMatch) match the policy? */
export function matchesPolicy(x: MatchContext, p: CompiledAuthorizationPolicy): boolean {
  const rules = p.rules;
  for (let r = 0; r < rules.length; r++) {
    const clauses = rules[r]!;
    let all = true;
    for (let c = 0; c < clauses.length && all; c++) {
      const alternatives = clauses[c]!;
      let any = false;
      for (let a = 0; a < alternatives.length; a++) {
        if (matchOne(x, alternatives[a]!)) {
          any = true;
          break;
        }
      }
      all = any;
    }
    if (all) return true;
  }
  return false;
}

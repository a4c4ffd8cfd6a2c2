/**
 * The ingress gateway's view of a Gateway of class `weft` (issue 13): its listeners read from the
 * Gateway object, each with the TLS certificates of its `kubernetes.io/tls` Secrets resolved and
 * checked, and the listener conditions Gateway API defines. Pure: no sockets, no clock; the
 * Secrets come from a lookup the caller gives (the lab's manifests, a test's map).
 *
 * A listener that cannot be served (an unsupported protocol, a Secret that is missing, of the
 * wrong type or whose certificate and key do not load) gets its conditions false with the
 * reason and is left out; the Gateway's other listeners are served as before.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { GATEWAY_GROUP } from '../l7/index.js';

/** The GatewayClass whose Gateways `weft gateway` serves (the waypoint's is `weft-waypoint`). */
export const INGRESS_GATEWAY_CLASS = 'weft';

export type ListenerProtocol = 'HTTP' | 'HTTPS';

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

export interface TlsCertificate {
  /** `<namespace>/<name>` of the Secret. */
  readonly secret: string;
  readonly cert: string;
  readonly key: string;
  /** DNS names of the certificate (subjectAltName, else the CN): which SNI it is chosen for. */
  readonly dnsNames: readonly string[];
}

export interface AllowedRoutes {
  readonly from: 'Same' | 'All' | 'Selector';
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** matchExpressions are not supported: a Selector with them admits no namespace. */
  readonly unsupported: string | undefined;
}

export interface Listener {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  /** Lower case; undefined: every hostname. */
  readonly hostname: string | undefined;
  readonly allowedRoutes: AllowedRoutes;
  readonly certificates: readonly TlsCertificate[];
  /** True when the listener is served (Accepted, ResolvedRefs and Programmed all true). */
  readonly ready: boolean;
  readonly conditions: readonly Condition[];
}

export interface GatewayConfig {
  readonly key: string;
  readonly name: string;
  readonly namespace: string;
  readonly generation: number | undefined;
  readonly listeners: readonly Listener[];
  readonly conditions: readonly Condition[];
}

export interface SecretObject {
  readonly type?: string | undefined;
  /** base64 values, as the API has them. */
  readonly data?: Readonly<Record<string, string>> | undefined;
  readonly stringData?: Readonly<Record<string, string>> | undefined;
}

/** The Secret `<namespace>/<name>`, or undefined when there is none. */
export type SecretLookup = (namespace: string, name: string) => SecretObject | undefined;

interface RawListener {
  name?: unknown;
  port?: unknown;
  protocol?: unknown;
  hostname?: unknown;
  tls?: { mode?: unknown; certificateRefs?: { group?: unknown; kind?: unknown; name?: unknown; namespace?: unknown }[] };
  allowedRoutes?: { namespaces?: { from?: unknown; selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } }; kinds?: { group?: unknown; kind?: unknown }[] };
}

export interface GatewayObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown; generation?: unknown };
  spec?: { gatewayClassName?: unknown; listeners?: RawListener[] };
}

function cond(type: string, ok: boolean, reason: string, message: string): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message };
}

/** Whether `obj` is a Gateway of class `weft` named `namespace/name`. */
export function isIngressGateway(obj: unknown, namespace: string, name: string): obj is GatewayObject {
  const g = obj as GatewayObject | null;
  return (
    g !== null &&
    typeof g === 'object' &&
    g.kind === 'Gateway' &&
    typeof g.apiVersion === 'string' &&
    g.apiVersion.startsWith(`${GATEWAY_GROUP}/`) &&
    g.spec?.gatewayClassName === INGRESS_GATEWAY_CLASS &&
    g.metadata?.name === name &&
    (g.metadata.namespace ?? 'default') === namespace
  );
}

function decodeField(s: SecretObject, field: string): string | undefined {
  const plain = s.stringData?.[field];
  if (typeof plain === 'string') return plain;
  const b64 = s.data?.[field];
  return typeof b64 === 'string' ? Buffer.from(b64, 'base64').toString('utf8') : undefined;
}

/** The certificate of a `kubernetes.io/tls` Secret, or the reason it cannot be used. */
export function loadTlsSecret(key: string, s: SecretObject | undefined): TlsCertificate | string {
  if (s === undefined) return `Secret ${key} not found`;
  if (s.type !== undefined && s.type !== 'kubernetes.io/tls') return `Secret ${key} is of type ${s.type}, not kubernetes.io/tls`;
  const cert = decodeField(s, 'tls.crt');
  const pem = decodeField(s, 'tls.key');
  if (cert === undefined || pem === undefined) return `Secret ${key} lacks ${cert === undefined ? 'tls.crt' : 'tls.key'}`;
  try {
    const x = new X509Certificate(cert);
    const k = createPrivateKey(pem);
    if (!x.checkPrivateKey(k)) return `Secret ${key}: tls.key is not the key of tls.crt`;
    const sans = (x.subjectAltName ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p.startsWith('DNS:'))
      .map((p) => p.slice(4).toLowerCase());
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
    return { secret: key, cert, key: pem, dnsNames: sans.length > 0 ? sans : cn !== undefined ? [cn.toLowerCase()] : [] };
  } catch (err) {
    return `Secret ${key}: tls.crt/tls.key do not load: ${(err as Error).message}`;
  }
}

function allowedRoutesOf(raw: RawListener['allowedRoutes']): AllowedRoutes {
  const from = raw?.namespaces?.from;
  if (from === 'All' || from === 'Selector') {
    const sel = raw?.namespaces?.selector;
    if (from === 'All') return { from, selector: undefined, unsupported: undefined };
    const unsupported = sel === undefined ? 'allowedRoutes.namespaces.from Selector needs a selector' : (sel.matchExpressions ?? []).length > 0 ? 'selector matchExpressions are not supported (use matchLabels)' : undefined;
    return { from, selector: sel?.matchLabels ?? {}, unsupported };
  }
  return { from: 'Same', selector: undefined, unsupported: undefined };
}

function readListener(raw: RawListener, namespace: string, secrets: SecretLookup): Listener {
  const name = typeof raw.name === 'string' ? raw.name : '<unnamed>';
  const port = typeof raw.port === 'number' && Number.isInteger(raw.port) && raw.port > 0 && raw.port < 65536 ? raw.port : 0;
  const protocol = typeof raw.protocol === 'string' ? raw.protocol : '';
  const hostname = typeof raw.hostname === 'string' && raw.hostname !== '' ? raw.hostname.toLowerCase() : undefined;
  const allowedRoutes = allowedRoutesOf(raw.allowedRoutes);
  const base = { name, port, protocol, hostname, allowedRoutes };
  // `resolved` false: a reference failed (Accepted stays true, ResolvedRefs false with the reason);
  // else the listener itself is not acceptable (Accepted false with the reason).
  const refuse = (reason: string, message: string, resolved = true): Listener => ({
    ...base,
    certificates: [],
    ready: false,
    conditions: [
      resolved ? cond('Accepted', false, reason, message) : cond('Accepted', true, 'Accepted', 'listener accepted'),
      resolved ? cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved') : cond('ResolvedRefs', false, reason, message),
      cond('Programmed', false, 'Invalid', message),
    ],
  });
  if (port === 0) return refuse('UnsupportedValue', `listener ${name}: port must be 1-65535`);
  if (protocol !== 'HTTP' && protocol !== 'HTTPS') return refuse('UnsupportedProtocol', `listener ${name}: protocol ${protocol || '(none)'} is not supported (HTTP, HTTPS)`);
  const kinds = raw.allowedRoutes?.kinds;
  if (kinds !== undefined && kinds.length > 0 && !kinds.some((k) => k.kind === 'HTTPRoute' && (k.group === undefined || k.group === GATEWAY_GROUP))) {
    return { ...refuse('InvalidRouteKinds', `listener ${name}: allowedRoutes.kinds admits no HTTPRoute (the only kind served)`, false) };
  }
  const certificates: TlsCertificate[] = [];
  if (protocol === 'HTTPS') {
    if ((raw.tls?.mode ?? 'Terminate') !== 'Terminate') return refuse('UnsupportedValue', `listener ${name}: tls.mode ${String(raw.tls?.mode)} is not supported (Terminate)`);
    const refs = raw.tls?.certificateRefs ?? [];
    if (refs.length === 0) return refuse('InvalidCertificateRef', `listener ${name}: an HTTPS listener needs tls.certificateRefs`, false);
    const problems: string[] = [];
    for (const ref of refs) {
      const ns = typeof ref.namespace === 'string' ? ref.namespace : namespace;
      const key = `${ns}/${String(ref.name)}`;
      if ((ref.group !== undefined && ref.group !== '') || (ref.kind ?? 'Secret') !== 'Secret') {
        problems.push(`certificateRef ${key}: only core Secrets are supported`);
        continue;
      }
      if (ns !== namespace) {
        return refuse('RefNotPermitted', `listener ${name}: certificateRef ${key} is in another namespace (ReferenceGrants for Secrets are not supported)`, false);
      }
      const loaded = loadTlsSecret(key, secrets(ns, String(ref.name)));
      if (typeof loaded === 'string') problems.push(loaded);
      else certificates.push(loaded);
    }
    // Gateway API: a listener with any invalid certificateRef is not resolved; it is not served
    // rather than served with a part of its certificates.
    if (problems.length > 0) return refuse('InvalidCertificateRef', `listener ${name}: ${problems.join('; ')}`, false);
  }
  if (allowedRoutes.unsupported !== undefined) return refuse('UnsupportedValue', `listener ${name}: ${allowedRoutes.unsupported}`);
  return {
    ...base,
    certificates,
    ready: true,
    conditions: [cond('Accepted', true, 'Accepted', 'listener accepted'), cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved'), cond('Programmed', true, 'Programmed', 'listener served')],
  };
}

/**
 * The Gateway's listeners. Two listeners with the same port, protocol and hostname conflict: the
 * later one is refused (Conflicted), as the spec says; HTTP and HTTPS never share a port.
 */
export function readGateway(g: GatewayObject, secrets: SecretLookup): GatewayConfig {
  const name = String(g.metadata?.name);
  const namespace = typeof g.metadata?.namespace === 'string' ? g.metadata.namespace : 'default';
  const generation = typeof g.metadata?.generation === 'number' ? g.metadata.generation : undefined;
  const listeners: Listener[] = [];
  const names = new Set<string>();
  for (const raw of g.spec?.listeners ?? []) {
    let l = readListener(raw, namespace, secrets);
    const clash = listeners.find((o) => o.port === l.port && o.ready && (o.protocol !== l.protocol || o.hostname === l.hostname));
    if (names.has(l.name)) l = { ...l, ready: false, conditions: [cond('Accepted', false, 'Conflicted', `listener name ${l.name} is used twice`), cond('Programmed', false, 'Invalid', 'listener name conflict')] };
    else if (l.ready && clash !== undefined) {
      const why = clash.protocol !== l.protocol ? `port ${l.port} is ${clash.protocol} on listener ${clash.name}` : `listener ${clash.name} has the same port and hostname`;
      l = { ...l, ready: false, conditions: [cond('Accepted', true, 'Accepted', 'listener accepted'), cond('Conflicted', true, clash.protocol !== l.protocol ? 'ProtocolConflict' : 'HostnameConflict', why), cond('Programmed', false, 'Invalid', why)] };
    }
    names.add(l.name);
    listeners.push(l);
  }
  const served = listeners.filter((l) => l.ready).length;
  const conditions = [
    cond('Accepted', true, 'Accepted', `served by weft gateway (class ${INGRESS_GATEWAY_CLASS})`),
    cond('Programmed', served > 0, served > 0 ? 'Programmed' : 'Invalid', `${served} of ${listeners.length} listeners served`),
  ];
  return { key: `${namespace}/${name}`, name, namespace, generation, listeners, conditions };
}

/** Whether `host` (lower case, no port) is matched by `pattern` (exact, or `*.suffix`: one or more labels). */
export function hostnameMatches(pattern: string | undefined, host: string): boolean {
  if (pattern === undefined || pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return pattern === host;
}

/**
 * How specific a hostname pattern is, to choose among several that match one host: an exact
 * name beats any wildcard, a longer wildcard beats a shorter, every hostname (undefined) is last.
 */
export function specificity(pattern: string | undefined): number {
  if (pattern === undefined || pattern === '*') return 0;
  return pattern.startsWith('*.') ? pattern.length : 100_000 + pattern.length;
}

/** Of `candidates`, the one whose hostname matches `host` most specifically. */
export function mostSpecific<T extends { readonly hostname: string | undefined }>(candidates: readonly T[], host: string): T | undefined {
  let best: T | undefined;
  for (const c of candidates) if (hostnameMatches(c.hostname, host) && (best === undefined || specificity(c.hostname) > specificity(best.hostname))) best = c;
  return best;
}

/** The certificate of `listener` for SNI `servername`: one whose DNS names match it, else the first. */
export function certificateFor(listener: Listener, servername: string): TlsCertificate | undefined {
  const host = servername.toLowerCase();
  return listener.certificates.find((c) => c.dnsNames.some((d) => hostnameMatches(d, host))) ?? listener.certificates[0];
}

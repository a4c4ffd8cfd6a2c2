/**
 * Kubernetes Ingress (networking.k8s.io/v1) served by the ingress gateway (issue 13): the
 * Ingresses of class `weft` (spec.ingressClassName, an IngressClass whose controller is
 * `weft.dev/gateway-controller`, the legacy annotation kubernetes.io/ingress.class, or none when
 * such an IngressClass is the default class) become listeners and HTTPRoute-equivalent rules,
 * compiled by agent/l7 like any HTTPRoute (binding.ts compileStandIns): the same RouteRules.
 *
 * - one plain HTTP listener on port 80 for every Ingress (virtual hosts by rule host);
 * - one HTTPS listener on 443 per TLS host (`tls[].hosts`, the certificate of `secretName` in
 *   the Ingress's namespace; a TLS entry without hosts is the certificate for every host); a bad
 *   Secret takes down only that host's listener, with the reason;
 * - paths: Prefix is Gateway API's PathPrefix (by segment: `/foo` matches `/foo` and `/foo/bar`,
 *   not `/foobar`), Exact is Exact, ImplementationSpecific is Prefix; the longest path wins, as
 *   the Ingress spec says (Gateway API precedence gives the same order);
 * - a wildcard host `*.foo.com` matches exactly one label (the Ingress spec), unlike Gateway API's;
 * - rules of several Ingresses for one host are merged; the oldest Ingress's `defaultBackend`
 *   answers what no rule matches.
 * What cannot be served (a Resource backend, a named port, a bad path) is reported per Ingress
 * and left out; the rest of the Ingress is served.
 */
import type { MeshModel } from '../discovery/types.js';
import { validateRouteObject } from '../l7/index.js';
import type { HTTPRoute } from '../l7/schema.js';
import { compileStandIns, routeOrder } from './binding.js';
import { hostnameMatches, loadTlsSecret, mostSpecific, type Condition, type Listener, type SecretLookup, type TlsCertificate } from './config.js';
import type { VhostPart } from './vhosts.js';

export const INGRESS_CLASS = 'weft';
export const INGRESS_CONTROLLER = 'weft.dev/gateway-controller';
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
export const INGRESS_HTTP_PORT = 80;
export const INGRESS_HTTPS_PORT = 443;
/** The name of the Ingresses' plain HTTP listener among the gateway's listeners. */
export const INGRESS_HTTP_LISTENER = 'ingress:http';

interface IngressBackend {
  service?: { name?: unknown; port?: { number?: unknown; name?: unknown } };
  resource?: unknown;
}

export interface IngressObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown; creationTimestamp?: unknown; generation?: unknown; annotations?: Record<string, unknown> };
  spec?: {
    ingressClassName?: unknown;
    defaultBackend?: IngressBackend;
    tls?: { hosts?: unknown[]; secretName?: unknown }[];
    rules?: { host?: unknown; http?: { paths?: { path?: unknown; pathType?: unknown; backend?: IngressBackend }[] } }[];
  };
}

export interface IngressReport {
  /** `<namespace>/<name>` */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  /** What of it is not served, and why (empty: all of it is). */
  readonly problems: readonly string[];
}

export interface IngressTranslation {
  readonly listeners: readonly Listener[];
  readonly parts: readonly VhostPart[];
  readonly ingresses: readonly IngressReport[];
}

function isKind(o: unknown, kind: string): o is { apiVersion: string; kind: string; metadata?: { name?: unknown; annotations?: Record<string, unknown> }; spec?: Record<string, unknown> } {
  const x = o as { kind?: unknown; apiVersion?: unknown } | null;
  return x !== null && typeof x === 'object' && x.kind === kind && x.apiVersion === 'networking.k8s.io/v1';
}

/** The IngressClass names that are Weft's (always `weft`), and the default class if it is Weft's. */
export function weftIngressClasses(others: readonly unknown[]): { names: Set<string>; isDefault: boolean } {
  const names = new Set([INGRESS_CLASS]);
  let isDefault = false;
  for (const o of others) {
    if (!isKind(o, 'IngressClass') || o.spec?.controller !== INGRESS_CONTROLLER || typeof o.metadata?.name !== 'string') continue;
    names.add(o.metadata.name);
    if (o.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true') isDefault = true;
  }
  return { names, isDefault };
}

/** Whether an Ingress is Weft's: its class (field, else the legacy annotation) is one of Weft's, or it has none and Weft's class is the default. */
export function isWeftIngress(o: unknown, classes: { names: Set<string>; isDefault: boolean }): o is IngressObject {
  if (!isKind(o, 'Ingress')) return false;
  const i = o as IngressObject;
  const cls = typeof i.spec?.ingressClassName === 'string' ? i.spec.ingressClassName : i.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
  return typeof cls === 'string' ? classes.names.has(cls) : classes.isDefault;
}

const HOST = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An Ingress backend as a Gateway API backendRef, or why it cannot be one. */
function backendRef(b: IngressBackend | undefined, where: string): { name: string; port: number } | string {
  if (b?.resource !== undefined) return `${where}: resource backends are not supported (use a Service)`;
  const name = b?.service?.name;
  const port = b?.service?.port?.number;
  if (typeof name !== 'string' || name === '') return `${where}: backend.service.name is required`;
  if (b?.service?.port?.name !== undefined) return `${where}: backend.service.port.name is not supported (give port.number)`;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return `${where}: backend.service.port.number must be 1-65535`;
  return { name, port };
}

function cond(type: string, ok: boolean, reason: string, message: string): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message };
}

const ALL_ROUTES = { from: 'All', selector: undefined, unsupported: undefined } as const;

function httpsListener(host: string | undefined, certificates: TlsCertificate[], problem: string | undefined): Listener {
  const name = `ingress:https:${host ?? '*'}`;
  const base = { name, port: INGRESS_HTTPS_PORT, protocol: 'HTTPS', hostname: host, allowedRoutes: ALL_ROUTES };
  if (problem !== undefined) {
    return { ...base, certificates: [], ready: false, conditions: [cond('Accepted', true, 'Accepted', 'listener accepted'), cond('ResolvedRefs', false, 'InvalidCertificateRef', problem), cond('Programmed', false, 'Invalid', problem)] };
  }
  return { ...base, certificates, ready: true, conditions: [cond('Accepted', true, 'Accepted', 'listener accepted'), cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved'), cond('Programmed', true, 'Programmed', 'listener served')] };
}

/** The HTTPRoute an Ingress rule became, checked by agent/l7 as any HTTPRoute is (under a name the check takes). */
function checked(route: { metadata: { name: string }; spec: object }, where: string, problems: string[]): HTTPRoute | undefined {
  const v = validateRouteObject({ ...route, metadata: { ...route.metadata, name: 'ingress' } });
  if (v.ok) return route as unknown as HTTPRoute;
  for (const e of v.errors) problems.push(`${where}: ${e.path.replace(/^spec\.rules\[\d+\]\.matches\[0\]\./, '')} ${e.message}`);
  return undefined;
}

interface Rule {
  readonly host: string | undefined;
  readonly route: HTTPRoute;
}

/** The Ingresses of class weft in `model.others`, translated. */
export function translateIngresses(model: Pick<MeshModel, 'services' | 'others'>, secrets: SecretLookup): IngressTranslation {
  const classes = weftIngressClasses(model.others);
  const ingresses = (model.others as readonly unknown[]).filter((o): o is IngressObject => isWeftIngress(o, classes)).map((i) => {
    const namespace = typeof i.metadata?.namespace === 'string' ? i.metadata.namespace : 'default';
    const name = String(i.metadata?.name);
    const created = typeof i.metadata?.creationTimestamp === 'string' ? i.metadata.creationTimestamp : undefined;
    return { i, namespace, name, key: `${namespace}/${name}`, order: routeOrder({ metadata: { namespace, name, creationTimestamp: created } }) };
  });
  ingresses.sort((a, b) => (a.order[0] !== b.order[0] ? (a.order[0] < b.order[0] ? -1 : 1) : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const reports: IngressReport[] = [];
  const rules: (Rule & { order: readonly [number, string] })[] = [];
  const defaults: { route: HTTPRoute; order: readonly [number, string] }[] = [];
  const tlsByHost = new Map<string | undefined, { certificates: TlsCertificate[]; problem: string | undefined; owner: string }>();
  for (const { i, namespace, name, key, order } of ingresses) {
    const problems: string[] = [];
    const routeBase = (suffix: string, host: string | undefined) => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: `~ingress~${name}~${suffix}`, namespace, ...(typeof i.metadata?.creationTimestamp === 'string' ? { creationTimestamp: i.metadata.creationTimestamp } : {}) },
      spec: { parentRefs: [], ...(host !== undefined ? { hostnames: [host] } : {}) },
    });
    (i.spec?.rules ?? []).forEach((r, ri) => {
      const host = typeof r.host === 'string' && r.host !== '' ? r.host.toLowerCase() : undefined;
      if (host !== undefined && !HOST.test(host)) {
        problems.push(`spec.rules[${ri}].host ${host}: not a DNS name (a wildcard is one leading *. label)`);
        return;
      }
      const routeRules: HTTPRoute['spec']['rules'] = [];
      (r.http?.paths ?? []).forEach((p, pi) => {
        const where = `spec.rules[${ri}].http.paths[${pi}]`;
        const path = typeof p.path === 'string' && p.path !== '' ? p.path : '/';
        const type = p.pathType ?? 'ImplementationSpecific';
        if (type !== 'Prefix' && type !== 'Exact' && type !== 'ImplementationSpecific') return void problems.push(`${where}: pathType ${String(type)} is not Prefix, Exact or ImplementationSpecific`);
        if (!path.startsWith('/')) return void problems.push(`${where}: path ${path} must start with /`);
        const ref = backendRef(p.backend, where);
        if (typeof ref === 'string') return void problems.push(ref);
        routeRules.push({ matches: [{ path: { type: type === 'Exact' ? 'Exact' : 'PathPrefix', value: path } }], backendRefs: [{ name: ref.name, port: ref.port }] } as NonNullable<HTTPRoute['spec']['rules']>[number]);
      });
      const route = checked({ ...routeBase(`rule${ri}`, host), spec: { ...routeBase(`rule${ri}`, host).spec, rules: routeRules } }, `spec.rules[${ri}]`, problems);
      if (routeRules.length > 0 && route !== undefined) rules.push({ host, order, route });
    });
    if (i.spec?.defaultBackend !== undefined) {
      const ref = backendRef(i.spec.defaultBackend, 'spec.defaultBackend');
      if (typeof ref === 'string') problems.push(ref);
      else {
        const route = checked({ ...routeBase('default', undefined), spec: { parentRefs: [], rules: [{ backendRefs: [{ name: ref.name, port: ref.port }] }] } }, 'spec.defaultBackend', problems);
        if (route !== undefined) defaults.push({ order, route });
      }
    }
    (i.spec?.tls ?? []).forEach((t, ti) => {
      const secret = typeof t.secretName === 'string' && t.secretName !== '' ? t.secretName : undefined;
      const hosts = (t.hosts ?? []).filter((h): h is string => typeof h === 'string').map((h) => h.toLowerCase());
      const loaded = secret === undefined ? `spec.tls[${ti}]: secretName is required (no default certificate)` : loadTlsSecret(`${namespace}/${secret}`, secrets(namespace, secret));
      for (const h of hosts.length > 0 ? hosts : [undefined]) {
        const had = tlsByHost.get(h);
        if (had !== undefined) {
          if (had.owner !== key) problems.push(`spec.tls[${ti}]: host ${h ?? '*'} has its certificate from Ingress ${had.owner} (the oldest)`);
          continue;
        }
        tlsByHost.set(h, typeof loaded === 'string' ? { certificates: [], problem: loaded, owner: key } : { certificates: [loaded], problem: undefined, owner: key });
        if (typeof loaded === 'string') problems.push(`TLS for ${h ?? 'every host'}: ${loaded}`);
      }
    });
    reports.push({ key, namespace, name, problems });
  }

  const listeners: Listener[] = [];
  if (ingresses.length > 0) {
    listeners.push({ name: INGRESS_HTTP_LISTENER, port: INGRESS_HTTP_PORT, protocol: 'HTTP', hostname: undefined, allowedRoutes: ALL_ROUTES, certificates: [], ready: true, conditions: [cond('Accepted', true, 'Accepted', 'listener accepted'), cond('Programmed', true, 'Programmed', 'listener served')] });
  }
  for (const [host, t] of tlsByHost) listeners.push(httpsListener(host, t.certificates, t.problem));

  const compiled = compileStandIns(model, [...rules.map((r) => r.route), ...defaults.map((d) => d.route)]);
  const entriesOf = (r: HTTPRoute) => compiled.entries.get(`${r.metadata.namespace ?? 'default'}/${r.metadata.name}`) ?? [];
  const parts: VhostPart[] = [];
  const tlsListeners = listeners.filter((l) => l.protocol === 'HTTPS');
  for (const r of rules) {
    const entries = entriesOf(r.route);
    parts.push({ listener: INGRESS_HTTP_LISTENER, hostname: r.host, oneLabel: true, entries, tier: 0, order: r.order });
    // Over TLS: on the listener of the rule's host (its certificate), or on every TLS listener for a rule of every host.
    const over = r.host === undefined ? tlsListeners : [tlsListeners.find((l) => l.hostname === r.host) ?? (r.host.startsWith('*.') ? tlsListeners.find((l) => l.hostname === undefined) : mostSpecific(tlsListeners, r.host))];
    for (const l of over) if (l !== undefined && (r.host === undefined || hostnameMatches(l.hostname, r.host))) parts.push({ listener: l.name, hostname: r.host, oneLabel: true, entries, tier: 0, order: r.order });
  }
  const fallback = defaults[0];
  if (fallback !== undefined) {
    const entries = entriesOf(fallback.route);
    // Every virtual host the rules made, and every host (what no rule's host matches).
    const vhosts = new Map<string, { listener: string; hostname: string | undefined }>();
    for (const l of [INGRESS_HTTP_LISTENER, ...tlsListeners.map((x) => x.name)]) vhosts.set(`${l}#*`, { listener: l, hostname: undefined });
    for (const p of parts) vhosts.set(`${p.listener}#${p.hostname ?? '*'}`, { listener: p.listener, hostname: p.hostname });
    for (const v of vhosts.values()) parts.push({ ...v, oneLabel: true, entries, tier: 2, order: fallback.order });
  }
  return { listeners, parts, ingresses: reports };
}

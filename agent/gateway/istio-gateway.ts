/**
 * Istio's `Gateway` (networking.istio.io) and the VirtualServices bound to it with
 * `gateways: [NAME]`, served by the ingress gateway (issue 13, for teams moving from Istio;
 * Istio's samples/bookinfo/networking/bookinfo-gateway.yaml works unchanged):
 *
 * - an Istio Gateway applies when every label of its `selector` is one of this gateway's pod
 *   labels (`istio: ingressgateway` for the cluster's ingress gateway, or a Weft gateway's own
 *   labels), in any namespace, as istiod selects by default; an empty selector selects nothing;
 * - each server is a listener per host: `port.number`, protocol HTTP (also HTTP2, GRPC: plain
 *   HTTP/1.1 and h2c) or HTTPS (tls.mode SIMPLE with `credentialName`, a kubernetes.io/tls
 *   Secret, or an Opaque one with `cert`/`key`, in the gateway's own namespace as Istio reads
 *   it); `hosts` `*`, `name`, `*.suffix`, optionally `ns/` (only that namespace's
 *   VirtualServices), `./` (the Gateway's namespace) or `*\/`; `tls.httpsRedirect` answers
 *   every request on the server with a 301 to https;
 * - a VirtualService binds to a server when its `gateways` names the Gateway (`NAME` in its own
 *   namespace, or `ns/NAME`) and a host of it intersects the server's; its `http` routes are
 *   compiled by agent/l7/istio (compileIstio: matches, rewrites, retries, faults, subsets of
 *   DestinationRules) with a stand-in Service at the server's port, and kept in their written
 *   order (Istio's first match), VirtualServices oldest first.
 * Other modes (PASSTHROUGH, MUTUAL, ISTIO_MUTUAL) and protocols (TCP, TLS) are refused per
 * server with the reason; the Gateway's other servers are served.
 */
import type { MeshModel } from '../discovery/types.js';
import type { RouteCondition, RouteStatus } from '../l7/index.js';
import type { RouteModel, TableEntry } from '../l7/compile.js';
import { compileIstio, MESH_GATEWAY } from '../l7/istio/compile.js';
import type { DestinationRule, VirtualService } from '../l7/istio/schema.js';
import { validateIstioObject } from '../l7/istio/validate.js';
import { compileStandIns, intersectHostnames, routeOrder } from './binding.js';
import { loadTlsSecret, type Condition, type Listener, type SecretLookup, type SecretObject } from './config.js';
import type { VhostPart } from './vhosts.js';

export const ISTIO_INGRESS_SELECTOR = { istio: 'ingressgateway' } as const;

interface IstioServer {
  port?: { number?: unknown; name?: unknown; protocol?: unknown };
  hosts?: unknown[];
  tls?: { mode?: unknown; credentialName?: unknown; httpsRedirect?: unknown };
  name?: unknown;
}

export interface IstioGatewayObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown; creationTimestamp?: unknown; generation?: unknown };
  spec?: { selector?: Record<string, unknown>; servers?: IstioServer[] };
}

export interface IstioGatewayReport {
  readonly key: string;
  readonly problems: readonly string[];
}

export interface IstioTranslation {
  readonly listeners: readonly Listener[];
  readonly parts: readonly VhostPart[];
  readonly gateways: readonly IstioGatewayReport[];
  /** The VirtualServices with a `gateways` entry naming a served Istio Gateway. */
  readonly routes: readonly RouteStatus[];
}

function isIstio(o: unknown, kind: string): boolean {
  const x = o as { kind?: unknown; apiVersion?: unknown } | null;
  return x !== null && typeof x === 'object' && x.kind === kind && typeof x.apiVersion === 'string' && x.apiVersion.startsWith('networking.istio.io/');
}

/** Whether the Istio Gateway's selector picks a workload of these labels. */
export function selects(selector: Record<string, unknown> | undefined, labels: Readonly<Record<string, string>>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

function cond(type: string, ok: boolean, reason: string, message: string): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message };
}

function rcond(type: 'Accepted' | 'ResolvedRefs', ok: boolean, reason: string, message: string, generation: number | undefined): RouteCondition {
  return { type, status: ok ? 'True' : 'False', reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
}

/** Istio's SIMPLE credential: a kubernetes.io/tls Secret, or a generic one with `cert` and `key`. */
function credential(s: SecretObject | undefined): SecretObject | undefined {
  if (s === undefined || s.type === 'kubernetes.io/tls') return s;
  const d = s.data ?? {};
  const p = s.stringData ?? {};
  if ((d.cert ?? p.cert) === undefined) return s;
  return { type: 'kubernetes.io/tls', data: { ...(d.cert !== undefined ? { 'tls.crt': d.cert } : {}), ...(d.key !== undefined ? { 'tls.key': d.key } : {}) }, stringData: { ...(p.cert !== undefined ? { 'tls.crt': p.cert } : {}), ...(p.key !== undefined ? { 'tls.key': p.key } : {}) } };
}

interface ServerHost {
  /** The namespace whose VirtualServices may bind (undefined: any). */
  readonly namespace: string | undefined;
  /** Lower case; undefined: every host. */
  readonly hostname: string | undefined;
}

function serverHost(h: string, gatewayNamespace: string): ServerHost {
  const slash = h.indexOf('/');
  const ns = slash < 0 ? '*' : h.slice(0, slash);
  const host = (slash < 0 ? h : h.slice(slash + 1)).toLowerCase();
  return { namespace: ns === '*' ? undefined : ns === '.' ? gatewayNamespace : ns, hostname: host === '*' ? undefined : host };
}

interface Served {
  readonly gateway: string;
  readonly gatewayNamespace: string;
  readonly listener: Listener;
  readonly host: ServerHost;
  readonly redirect: boolean;
}

const ALL_ROUTES = { from: 'All', selector: undefined, unsupported: undefined } as const;

/** The Istio Gateways that select `labels`, their servers as listeners, and their VirtualServices as virtual-host parts. */
export function translateIstioGateways(model: Pick<MeshModel, 'services' | 'others'>, secrets: SecretLookup, labels: Readonly<Record<string, string>>, workloadNamespace: string): IstioTranslation {
  const listeners: Listener[] = [];
  const reports: IstioGatewayReport[] = [];
  const served: Served[] = [];
  const redirects: { listener: string; hostname: string | undefined; order: readonly [number, string] }[] = [];
  for (const o of model.others) {
    if (!isIstio(o, 'Gateway')) continue;
    const g = o as IstioGatewayObject;
    if (!selects(g.spec?.selector, labels)) continue;
    const namespace = typeof g.metadata?.namespace === 'string' ? g.metadata.namespace : 'default';
    const name = String(g.metadata?.name);
    const key = `${namespace}/${name}`;
    const order = routeOrder({ metadata: { namespace, name, creationTimestamp: typeof g.metadata?.creationTimestamp === 'string' ? g.metadata.creationTimestamp : undefined } });
    const problems: string[] = [];
    (g.spec?.servers ?? []).forEach((s, si) => {
      const where = `server ${si}${typeof s.port?.name === 'string' ? ` (${s.port.name})` : ''}`;
      const port = s.port?.number;
      const protocol = String(s.port?.protocol ?? '').toUpperCase();
      const hosts = (s.hosts ?? []).filter((h): h is string => typeof h === 'string');
      const refuse = (reason: string, message: string, resolved = true): void => {
        problems.push(`${where}: ${message}`);
        for (const h of hosts.length > 0 ? hosts : ['*']) {
          listeners.push({ name: `istio:${key}:${si}:${h}`, port: typeof port === 'number' ? port : 0, protocol, hostname: serverHost(h, namespace).hostname, allowedRoutes: ALL_ROUTES, certificates: [], ready: false, conditions: [resolved ? cond('Accepted', false, reason, message) : cond('Accepted', true, 'Accepted', 'listener accepted'), ...(resolved ? [] : [cond('ResolvedRefs', false, reason, message)]), cond('Programmed', false, 'Invalid', message)] });
        }
      };
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return refuse('UnsupportedValue', 'port.number must be 1-65535');
      if (hosts.length === 0) return refuse('UnsupportedValue', 'hosts is required');
      const tlsMode = s.tls?.mode;
      const https = protocol === 'HTTPS';
      if (!https && !['HTTP', 'HTTP2', 'GRPC'].includes(protocol)) return refuse('UnsupportedProtocol', `protocol ${protocol || '(none)'} is not supported (HTTP, HTTP2, GRPC, HTTPS)`);
      let certificates: Listener['certificates'] = [];
      if (https) {
        if (tlsMode !== 'SIMPLE') return refuse('UnsupportedValue', `tls.mode ${String(tlsMode ?? '(none)')} is not supported (SIMPLE)`);
        const cred = s.tls?.credentialName;
        if (typeof cred !== 'string' || cred === '') return refuse('InvalidCertificateRef', 'tls.credentialName is required (certificate files are not read)', false);
        const loaded = loadTlsSecret(`${workloadNamespace}/${cred}`, credential(secrets(workloadNamespace, cred)));
        if (typeof loaded === 'string') return refuse('InvalidCertificateRef', loaded, false);
        certificates = [loaded];
      }
      const redirect = !https && s.tls?.httpsRedirect === true;
      for (const h of hosts) {
        const host = serverHost(h, namespace);
        const listener: Listener = { name: `istio:${key}:${si}:${h}`, port, protocol: https ? 'HTTPS' : 'HTTP', hostname: host.hostname, allowedRoutes: ALL_ROUTES, certificates, ready: true, conditions: [cond('Accepted', true, 'Accepted', 'listener accepted'), cond('Programmed', true, 'Programmed', 'listener served')] };
        listeners.push(listener);
        served.push({ gateway: key, gatewayNamespace: namespace, listener, host, redirect });
        if (redirect) redirects.push({ listener: listener.name, hostname: host.hostname, order });
      }
    });
    reports.push({ key, problems });
  }
  if (served.length === 0) return { listeners, parts: [], gateways: reports, routes: [] };

  const parts: VhostPart[] = [];
  // httpsRedirect: one catch-all RequestRedirect, compiled as an HTTPRoute rule is.
  if (redirects.length > 0) {
    const redirect = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: '~istio~https-redirect', namespace: workloadNamespace }, spec: { rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }] } };
    const entries = compileStandIns(model, [redirect as never]).entries.get(`${workloadNamespace}/~istio~https-redirect`) ?? [];
    for (const r of redirects) parts.push({ listener: r.listener, hostname: r.hostname, entries, tier: 0, order: r.order });
  }

  const rules: DestinationRule[] = [];
  for (const o of model.others) {
    if (!isIstio(o, 'DestinationRule')) continue;
    const v = validateIstioObject(o);
    if (v.ok) rules.push(v.value as DestinationRule);
  }
  const routes: RouteStatus[] = [];
  const gatewayKeys = new Set(served.map((s) => s.gateway));
  for (const o of model.others) {
    if (!isIstio(o, 'VirtualService')) continue;
    const raw = o as { metadata?: { name?: unknown; namespace?: unknown; generation?: unknown; creationTimestamp?: unknown }; spec?: { gateways?: unknown; hosts?: unknown } };
    const ns = typeof raw.metadata?.namespace === 'string' ? raw.metadata.namespace : 'default';
    const name = String(raw.metadata?.name);
    const generation = typeof raw.metadata?.generation === 'number' ? raw.metadata.generation : undefined;
    const named = (Array.isArray(raw.spec?.gateways) ? raw.spec.gateways : []).filter((x): x is string => typeof x === 'string' && x !== MESH_GATEWAY).map((x) => (x.includes('/') ? x : `${ns}/${x}`));
    const ours = named.filter((k) => gatewayKeys.has(k));
    if (ours.length === 0) continue;
    const label = `VirtualService ${ns}/${name}`;
    const hosts = (Array.isArray(raw.spec?.hosts) ? raw.spec.hosts : []).filter((h): h is string => typeof h === 'string').map((h) => h.toLowerCase());
    // Checked by agent/l7/istio as a mesh VirtualService of one stand-in host (a gateway's hosts are hostnames, not Services).
    const standInName = `~istio~${name}`;
    const v = validateIstioObject({ ...(o as object), metadata: { ...(raw.metadata as object), namespace: ns }, spec: { ...(raw.spec as object), hosts: [standInName], gateways: [MESH_GATEWAY] } });
    if (!v.ok) {
      routes.push({ route: label, kind: 'VirtualService', namespace: ns, name, ...(generation !== undefined ? { generation } : {}), parents: ours.map((k) => ({ parent: `Gateway ${k}`, mesh: false, conditions: [rcond('Accepted', false, 'Invalid', v.errors.map((e) => `${e.path} ${e.message}`).join('; '), generation)] })) });
      continue;
    }
    const vs = v.value as VirtualService;
    const order = routeOrder({ metadata: { namespace: ns, name, creationTimestamp: vs.metadata.creationTimestamp } });
    const byPort = new Map<number, { entries: readonly TableEntry[]; resolved: RouteCondition | undefined }>();
    const compileAt = (port: number) => {
      let c = byPort.get(port);
      if (c === undefined) {
        const services = new Map(model.services as ReadonlyMap<string, { key: string; ports: ReadonlyMap<number, unknown> }>);
        const key = `${ns}/${standInName}`;
        services.set(key, { key, ports: new Map([[port, []]]) });
        const out = compileIstio({ services: services as unknown as RouteModel['services'], others: model.others }, [vs], rules, new Map());
        const st = out.statuses.find((s) => s.kind === 'VirtualService');
        byPort.set(port, (c = { entries: out.byFrontend.get(`${key}:${port}`) ?? [], resolved: st?.parents[0]?.conditions.find((x) => x.type === 'ResolvedRefs') }));
      }
      return c;
    };
    const parents: RouteStatus['parents'][number][] = [];
    for (const gk of ours) {
      const bound: string[] = [];
      let resolved: RouteCondition | undefined;
      for (const s of served) {
        if (s.gateway !== gk || s.redirect || (s.host.namespace !== undefined && s.host.namespace !== ns)) continue;
        const names = intersectHostnames(s.host.hostname, hosts.includes('*') ? [] : hosts);
        if (names.length === 0) continue;
        const c = compileAt(s.listener.port);
        resolved ??= c.resolved;
        bound.push(`${s.listener.port}/${s.host.hostname ?? '*'}`);
        for (const h of new Set(names)) parts.push({ listener: s.listener.name, hostname: h, entries: c.entries, tier: 1, order });
      }
      parents.push({
        parent: `Gateway ${gk}`,
        mesh: false,
        conditions: [
          bound.length > 0 ? rcond('Accepted', true, 'Accepted', `bound to servers ${bound.join(', ')}`, generation) : rcond('Accepted', false, 'NoMatchingListenerHostname', `no host of the VirtualService (${hosts.join(', ')}) is a host of a server of Gateway ${gk} that admits namespace ${ns}`, generation),
          resolved ?? rcond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved', generation),
        ],
      });
    }
    routes.push({ route: label, kind: 'VirtualService', namespace: ns, name, ...(generation !== undefined ? { generation } : {}), parents });
  }
  return { listeners, parts, gateways: reports, routes };
}

/**
 * The service graph, from PromQL results to nodes and edges: pure (no I/O), so that what the
 * dashboard draws is decided here and tested without a Prometheus. The server (server.ts) runs
 * the queries of queries.ts and hands their samples in; the browser only lays the result out.
 *
 * Nodes: namespaces contain apps (canonical service, as Istio names them), apps contain workloads
 * (one per version); services, waypoints and gateways are nodes of their own. Edges: one per
 * source workload, destination and protocol (TCP from the agents' istio_tcp_* series, HTTP/gRPC
 * from the waypoints' istio_requests_*), so a pair that carries both shows two edges told apart.
 */

/** One series of an instant vector (as agent/lab/prometheus.ts's PromSample). */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

/** What the queries of queries.ts returned, each summed by EDGE_LABELS over the window. */
export interface GraphInput {
  /** Seconds the rates and increases cover. */
  windowSeconds: number;
  tcpSentBytesRate: Sample[];
  tcpReceivedBytesRate: Sample[];
  /** Connections opened in the window (increase). */
  tcpOpened: Sample[];
  /** Connections opened since the agents started (the counters' values). */
  tcpOpenedTotal: Sample[];
  /** Connections refused by policy in the window (closed with response_flags DENY). */
  tcpDenied: Sample[];
  /** Requests in the window, by EDGE_LABELS + response_code. */
  requests: Sample[];
  /** Requests since start, by EDGE_LABELS. */
  requestsTotal: Sample[];
  /** p99 of istio_request_duration_milliseconds over the window, by EDGE_LABELS. */
  requestP99Ms: Sample[];
  /** Keys (`ns/name`) of the Gateways of class weft-waypoint, and of ingress gateways. */
  waypoints: ReadonlySet<string>;
  gateways: ReadonlySet<string>;
  /** Only edges with a source or destination in these namespaces (all when empty). */
  namespaces?: readonly string[];
}

export type NodeKind = 'namespace' | 'app' | 'workload' | 'service' | 'waypoint' | 'gateway' | 'unknown';
export type Protocol = 'tcp' | 'http' | 'grpc';
/** Per edge: every connection mutual TLS, none, or both kinds seen in the window. */
export type Mtls = 'mutual_tls' | 'none' | 'mixed';

export interface GraphNode {
  id: string;
  kind: NodeKind;
  label: string;
  /** Compound parent (app or namespace), for the layout's boxes. */
  parent?: string;
  namespace?: string;
  workload?: string;
  app?: string;
  version?: string;
  /** SPIFFE principal seen on its traffic (the agents' source/destination_principal). */
  principal?: string;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  protocol: Protocol;
  /** `ns/name` of the destination service the traffic was addressed to, when known. */
  service?: string;
  mtls: Mtls;
  /** Which agents' series the numbers are from (destination preferred, as Kiali does). */
  reporter: string;
  /** TCP: bytes per second, both directions. */
  bytesPerSecond?: number;
  /** TCP: connections opened per second in the window, and in the window. */
  connectionsPerSecond?: number;
  connections?: number;
  connectionsTotal?: number;
  /** TCP: connections refused by policy in the window. */
  denied?: number;
  /** HTTP/gRPC: requests per second, their 5xx (or non-OK gRPC) fraction, p99. */
  requestsPerSecond?: number;
  requests?: number;
  requestsTotal?: number;
  errorRate?: number;
  p99Ms?: number;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Service -> workload its traffic reached: drawn as membership, not as traffic. */
  members: { service: string; workload: string }[];
  windowSeconds: number;
}

/** The labels every query sums by: enough to tell the nodes, the service and mTLS apart. */
export const EDGE_LABELS = [
  'reporter',
  'request_protocol',
  'connection_security_policy',
  'source_workload',
  'source_workload_namespace',
  'source_canonical_service',
  'source_canonical_revision',
  'source_app',
  'source_version',
  'source_principal',
  'destination_workload',
  'destination_workload_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_app',
  'destination_version',
  'destination_principal',
  'destination_service_name',
  'destination_service_namespace',
] as const;

const UNKNOWN = 'unknown';
const known = (v: string | undefined): v is string => v !== undefined && v !== '' && v !== UNKNOWN;

export function namespaceId(ns: string): string {
  return `ns:${ns}`;
}
export function appId(ns: string, app: string): string {
  return `app:${ns}/${app}`;
}
/** A workload per version: the agents name a workload by its app, so versions tell them apart. */
export function workloadId(ns: string, workload: string, version?: string): string {
  return `wl:${ns}/${workload}${version !== undefined ? `@${version}` : ''}`;
}
export function serviceId(ns: string, name: string): string {
  return `svc:${ns}/${name}`;
}
export function edgeId(protocol: Protocol, source: string, target: string): string {
  return `${protocol}:${source}->${target}`;
}

interface Side {
  namespace: string | undefined;
  workload: string | undefined;
  app: string | undefined;
  version: string | undefined;
  principal: string | undefined;
}

/** Istio's order: canonical service, else app; canonical revision, else version. */
function side(m: Record<string, string>, prefix: 'source' | 'destination'): Side {
  const pick = (...names: string[]): string | undefined => names.map((n) => m[`${prefix}_${n}`]).find(known);
  return {
    namespace: pick('workload_namespace'),
    workload: pick('workload'),
    app: pick('canonical_service', 'app'),
    version: pick('canonical_revision', 'version'),
    principal: pick('principal'),
  };
}

function destinationService(m: Record<string, string>): { namespace: string; name: string } | undefined {
  const name = m['destination_service_name'];
  const namespace = m['destination_service_namespace'];
  return known(name) && known(namespace) ? { namespace, name } : undefined;
}

function protocolOf(m: Record<string, string>): Protocol {
  const p = m['request_protocol'];
  return p === 'http' || p === 'grpc' ? p : 'tcp';
}

/** Accumulates one edge from several series (versions of mTLS, response codes, reporters). */
interface EdgeAcc {
  edge: GraphEdge;
  mtls: Set<string>;
  errors: number;
  p99: number | undefined;
}

class Builder {
  readonly nodes = new Map<string, GraphNode>();
  readonly edges = new Map<string, EdgeAcc>();
  readonly input: GraphInput;

  constructor(input: GraphInput) {
    this.input = input;
  }

  #ensure(node: GraphNode): string {
    const had = this.nodes.get(node.id);
    if (had === undefined) this.nodes.set(node.id, node);
    else if (had.principal === undefined && node.principal !== undefined) had.principal = node.principal;
    return node.id;
  }

  #namespace(ns: string): string {
    return this.#ensure({ id: namespaceId(ns), kind: 'namespace', label: ns, namespace: ns });
  }

  /** The node of one side of a series; undefined when nothing is known of it. */
  endpoint(s: Side, svc: { namespace: string; name: string } | undefined, isDestination: boolean): string {
    if (s.workload !== undefined && s.namespace !== undefined) {
      const key = `${s.namespace}/${s.workload}`;
      const kind: NodeKind = this.input.waypoints.has(key) || this.input.waypoints.has(`${s.namespace}/${s.app ?? ''}`) ? 'waypoint' : this.input.gateways.has(key) || this.input.gateways.has(`${s.namespace}/${s.app ?? ''}`) ? 'gateway' : 'workload';
      const nsNode = this.#namespace(s.namespace);
      // Waypoints and gateways stand alone in their namespace: they are infrastructure, not an app.
      let parent = nsNode;
      if (kind === 'workload' && s.app !== undefined) {
        parent = this.#ensure({ id: appId(s.namespace, s.app), kind: 'app', label: s.app, parent: nsNode, namespace: s.namespace, app: s.app });
      }
      // Istio's canonical revision of an unversioned workload is `latest`: nothing to show.
      const label = s.version !== undefined && s.version !== 'latest' && !s.workload.endsWith(s.version) ? `${s.workload} ${s.version}` : s.workload;
      return this.#ensure({
        id: workloadId(s.namespace, s.workload, s.version),
        kind,
        label,
        parent,
        namespace: s.namespace,
        workload: s.workload,
        ...(s.app !== undefined ? { app: s.app } : {}),
        ...(s.version !== undefined ? { version: s.version } : {}),
        ...(s.principal !== undefined ? { principal: s.principal } : {}),
      });
    }
    // A destination known only by its service (an unmeshed or external backend reported by the
    // source agent): the service node stands for it.
    if (isDestination && svc !== undefined) return this.service(svc);
    return this.#ensure({ id: 'unknown', kind: 'unknown', label: 'unknown' });
  }

  service(svc: { namespace: string; name: string }): string {
    return this.#ensure({ id: serviceId(svc.namespace, svc.name), kind: 'service', label: svc.name, parent: this.#namespace(svc.namespace), namespace: svc.namespace });
  }

  /** `svc`: the destination service of the edge as any of its series knows it. */
  edge(m: Record<string, string>, svc: { namespace: string; name: string } | undefined): EdgeAcc {
    const protocol = protocolOf(m);
    const source = this.endpoint(side(m, 'source'), undefined, false);
    const target = this.endpoint(side(m, 'destination'), svc, true);
    const id = edgeId(protocol, source, target);
    let acc = this.edges.get(id);
    if (acc === undefined) {
      acc = {
        edge: { id, source, target, protocol, mtls: 'none', reporter: m['reporter'] ?? UNKNOWN, ...(svc !== undefined ? { service: `${svc.namespace}/${svc.name}` } : {}) },
        mtls: new Set(),
        errors: 0,
        p99: undefined,
      };
      this.edges.set(id, acc);
    }
    if (acc.edge.service === undefined && svc !== undefined) acc.edge.service = `${svc.namespace}/${svc.name}`;
    return acc;
  }
}

/**
 * Both agents of a connection report it (reporter source and destination); the waypoint reports
 * requests (reporter waypoint). Per edge, one reporter's numbers are used so nothing is counted
 * twice: destination, else waypoint, else source (a destination outside the mesh has no agent).
 */
const REPORTER_RANK: Record<string, number> = { destination: 0, waypoint: 1, source: 2 };

/**
 * One key per drawn edge (protocol, source node, destination node), whichever agent reported
 * it: the destination agent of an HBONE connection does not know the service it was addressed
 * to, so the service is not part of the key (it is taken from whichever series has it).
 */
function edgeKey(m: Record<string, string>): string {
  const s = side(m, 'source');
  const d = side(m, 'destination');
  const svc = destinationService(m);
  const dst = d.workload !== undefined && d.namespace !== undefined ? [d.namespace, d.workload, d.version] : ['svc', svc?.namespace, svc?.name];
  return [protocolOf(m), s.namespace, s.workload, s.version, ...dst].join('|');
}

/** The best reporter of each edge, over every sample of every query. */
function chooseReporters(samples: readonly Sample[]): Map<string, string> {
  const best = new Map<string, string>();
  for (const s of samples) {
    const reporter = s.metric['reporter'] ?? UNKNOWN;
    const key = edgeKey(s.metric);
    const had = best.get(key);
    if (had === undefined || (REPORTER_RANK[reporter] ?? 9) < (REPORTER_RANK[had] ?? 9)) best.set(key, reporter);
  }
  return best;
}

function inNamespaces(m: Record<string, string>, namespaces: readonly string[] | undefined): boolean {
  if (namespaces === undefined || namespaces.length === 0) return true;
  const touched = [m['source_workload_namespace'], m['destination_workload_namespace'], m['destination_service_namespace']];
  return touched.some((ns) => ns !== undefined && namespaces.includes(ns));
}

const add = (a: number | undefined, b: number): number => (a ?? 0) + b;

/** A response that counts as an error: HTTP 5xx, or a gRPC status other than OK (0). */
export function isErrorResponse(m: Record<string, string>): boolean {
  const code = Number(m['response_code']);
  if (m['request_protocol'] === 'grpc' && m['grpc_response_status'] !== undefined) return m['grpc_response_status'] !== '0';
  return Number.isFinite(code) && (code >= 500 || code === 0);
}

/** Prometheus answers NaN for a rate or quantile without data; those are no data here. */
const finite = (v: number): boolean => Number.isFinite(v);

export function buildGraph(input: GraphInput): Graph {
  const b = new Builder(input);
  const all = [
    ...input.tcpSentBytesRate,
    ...input.tcpReceivedBytesRate,
    ...input.tcpOpened,
    ...input.tcpOpenedTotal,
    ...input.tcpDenied,
    ...input.requests,
    ...input.requestsTotal,
    ...input.requestP99Ms,
  ].filter((s) => inNamespaces(s.metric, input.namespaces));
  const reporters = chooseReporters(all);
  const services = new Map<string, { namespace: string; name: string }>();
  for (const s of all) {
    const svc = destinationService(s.metric);
    if (svc !== undefined && !services.has(edgeKey(s.metric))) services.set(edgeKey(s.metric), svc);
  }
  const each = (samples: readonly Sample[], fn: (acc: EdgeAcc, s: Sample) => void): void => {
    for (const s of samples) {
      if (!finite(s.value) || !inNamespaces(s.metric, input.namespaces)) continue;
      if (reporters.get(edgeKey(s.metric)) !== (s.metric['reporter'] ?? UNKNOWN)) continue;
      const acc = b.edge(s.metric, services.get(edgeKey(s.metric)));
      const policy = s.metric['connection_security_policy'];
      if (policy !== undefined) acc.mtls.add(policy);
      fn(acc, s);
    }
  };
  each(input.tcpSentBytesRate, (a, s) => (a.edge.bytesPerSecond = add(a.edge.bytesPerSecond, s.value)));
  each(input.tcpReceivedBytesRate, (a, s) => (a.edge.bytesPerSecond = add(a.edge.bytesPerSecond, s.value)));
  each(input.tcpOpened, (a, s) => {
    a.edge.connections = add(a.edge.connections, s.value);
    a.edge.connectionsPerSecond = add(a.edge.connectionsPerSecond, s.value / input.windowSeconds);
  });
  each(input.tcpOpenedTotal, (a, s) => (a.edge.connectionsTotal = add(a.edge.connectionsTotal, s.value)));
  each(input.tcpDenied, (a, s) => (a.edge.denied = add(a.edge.denied, s.value)));
  each(input.requests, (a, s) => {
    a.edge.requests = add(a.edge.requests, s.value);
    a.edge.requestsPerSecond = add(a.edge.requestsPerSecond, s.value / input.windowSeconds);
    if (isErrorResponse(s.metric)) a.errors += s.value;
  });
  each(input.requestsTotal, (a, s) => (a.edge.requestsTotal = add(a.edge.requestsTotal, s.value)));
  // Several series of one edge (mTLS and not): the worst p99 stands for the edge.
  each(input.requestP99Ms, (a, s) => (a.p99 = Math.max(a.p99 ?? 0, s.value)));

  const edges: GraphEdge[] = [];
  for (const acc of b.edges.values()) {
    const e = acc.edge;
    e.mtls = acc.mtls.has('mutual_tls') ? (acc.mtls.size > 1 ? 'mixed' : 'mutual_tls') : 'none';
    if (e.protocol !== 'tcp') {
      e.errorRate = e.requests !== undefined && e.requests > 0 ? acc.errors / e.requests : 0;
      if (acc.p99 !== undefined) e.p99Ms = acc.p99;
    }
    edges.push(e);
  }
  // Services are nodes joined to the workloads their traffic reached (members), so they show
  // without standing between caller and callee: an edge stays one workload pair.
  for (const e of edges) if (e.service !== undefined) b.service(splitKey(e.service));
  const nodes = [...b.nodes.values()].sort((x, y) => x.id.localeCompare(y.id));
  edges.sort((x, y) => x.id.localeCompare(y.id));
  return { nodes, edges, members: serviceMembers(edges), windowSeconds: input.windowSeconds };
}

function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Which workloads a service's traffic reached (service node -> workload), for drawing membership. */
function serviceMembers(edges: readonly GraphEdge[]): { service: string; workload: string }[] {
  const seen = new Set<string>();
  const out: { service: string; workload: string }[] = [];
  for (const e of edges) {
    if (e.service === undefined) continue;
    const svc = serviceId(splitKey(e.service).namespace, splitKey(e.service).name);
    if (svc === e.target) continue;
    const key = `${svc}|${e.target}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ service: svc, workload: e.target });
  }
  return out;
}

/** The callers of a node over the window, busiest first (requests/s, else bytes/s). */
export function topCallers(graph: Graph, nodeId: string, limit = 5): { source: string; protocol: Protocol; perSecond: number; unit: string }[] {
  return graph.edges
    .filter((e) => e.target === nodeId)
    .map((e) =>
      e.protocol === 'tcp'
        ? { source: e.source, protocol: e.protocol, perSecond: e.bytesPerSecond ?? 0, unit: 'B/s' }
        : { source: e.source, protocol: e.protocol, perSecond: e.requestsPerSecond ?? 0, unit: 'req/s' },
    )
    .sort((a, b) => b.perSecond - a.perSecond)
    .slice(0, limit);
}

/** Parses a window such as 30s, 1m, 5m, 1h (the UI's choices and PromQL's syntax); undefined if not one. */
export function parseWindow(text: string): number | undefined {
  const m = /^(\d{1,5})([smh])$/.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const seconds = n * (m[2] === 's' ? 1 : m[2] === 'm' ? 60 : 3600);
  return seconds >= 10 && seconds <= 86_400 ? seconds : undefined;
}

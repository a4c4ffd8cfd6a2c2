/**
 * Raw Kubernetes objects (from a manifest or from the API server) -> the few facts the model
 * uses. Every reader here takes `unknown` and never throws: an object with a missing optional
 * field (an ExternalName Service without ports, a pod without status or container ports, an
 * EndpointSlice without conditions) gives facts with defaults, as the API server's own defaulting
 * would. The API server's objects are not schema-checked, so this is the only place that must
 * hold up against any shape.
 *
 * Facts are also what the Kubernetes source keeps instead of the objects: a pod of another node
 * is kept as a handful of strings (no spec, no status history, only the labels telemetry reads).
 */
import { ACCEPTED_USE_WAYPOINT_LABELS, GATEWAY_NAME_LABEL, MESH_LABEL, SERVICE_NAME_LABEL } from './types.js';

export const DEFAULT_NAMESPACE = 'default';

export interface NamespaceFacts {
  name: string;
  labels: Record<string, string>;
}

export interface PodFacts {
  /** `<namespace>/<name>` */
  key: string;
  name: string;
  namespace: string;
  node: string;
  ip: string | undefined;
  phase: string | undefined;
  hostNetwork: boolean;
  serviceAccount: string | undefined;
  labels: Record<string, string>;
  /** Named container ports (for a Service's named targetPort). */
  containerPorts: Map<string, number>;
  /** Ready condition True (or, without conditions, Running or no phase). */
  ready: boolean;
  /** deletionTimestamp set: finishes what it has, gets nothing new. */
  terminating: boolean;
}

export interface ServicePortFacts {
  name: string;
  port: number;
  /** A number, or the name of a container port. */
  targetPort: number | string;
}

export interface ServiceFacts {
  key: string;
  name: string;
  namespace: string;
  type: string;
  /** undefined for headless (None) and ExternalName services. */
  clusterIP: string | undefined;
  /** undefined: selectorless (endpoints are managed elsewhere, as EndpointSlices). */
  selector: Record<string, string> | undefined;
  /** TCP ports only: the mesh carries TCP. */
  ports: ServicePortFacts[];
  labels: Record<string, string>;
}

export interface SliceEndpointFacts {
  ip: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** `<namespace>/<name>` when the endpoint names a Pod. */
  pod: string | undefined;
}

export interface SliceFacts {
  /** `<namespace>/<slice name>` */
  key: string;
  /** `<namespace>/<service name>`, from the kubernetes.io/service-name label; undefined: no service. */
  service: string | undefined;
  /** TCP ports: the slice port's name (as the Service port's name) -> number. */
  ports: { name: string; port: number }[];
  endpoints: SliceEndpointFacts[];
}

const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function array(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function port(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535 ? value : undefined;
}

/** A string map; anything but string values is dropped. Shared (not copied) when already clean. */
function stringMap(value: unknown): Record<string, string> {
  const r = record(value);
  if (r === undefined) return NO_LABELS;
  for (const k in r) {
    if (typeof r[k] !== 'string') {
      const out: Record<string, string> = {};
      for (const key in r) if (typeof r[key] === 'string') out[key] = r[key] as string;
      return out;
    }
  }
  return r as Record<string, string>;
}

export interface MetaFacts {
  name: string;
  namespace: string | undefined;
  labels: Record<string, string>;
  deleting: boolean;
}

/** name (required: undefined without one), namespace, labels. */
export function metaOf(raw: unknown): MetaFacts | undefined {
  const meta = record(record(raw)?.metadata);
  const name = str(meta?.name);
  if (meta === undefined || name === undefined) return undefined;
  return { name, namespace: str(meta.namespace), labels: stringMap(meta.labels), deleting: meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null };
}

export function namespaceFacts(raw: unknown): NamespaceFacts | undefined {
  const meta = metaOf(raw);
  return meta === undefined ? undefined : { name: meta.name, labels: meta.labels };
}

/** The labels a pod of another node keeps: what telemetry, mesh membership and waypoints read. */
export const REMOTE_POD_LABELS: readonly string[] = [MESH_LABEL, ...ACCEPTED_USE_WAYPOINT_LABELS, GATEWAY_NAME_LABEL, 'app', 'app.kubernetes.io/name', 'version', 'app.kubernetes.io/version', 'pod-template-hash'];

export interface PodFactsOptions {
  /** Keep only REMOTE_POD_LABELS (pods of other nodes: policy selectors only match local pods). */
  stripLabels?: boolean;
}

export function podFacts(raw: unknown, options: PodFactsOptions = {}): PodFacts | undefined {
  const meta = metaOf(raw);
  if (meta === undefined) return undefined;
  const o = record(raw)!;
  const spec = record(o.spec);
  const status = record(o.status);
  const namespace = meta.namespace ?? DEFAULT_NAMESPACE;
  const containerPorts = new Map<string, number>();
  for (const c of array(spec?.containers)) {
    for (const p of array(record(c)?.ports)) {
      const pr = record(p);
      const name = str(pr?.name);
      const number = port(pr?.containerPort);
      if (name !== undefined && number !== undefined && (pr?.protocol === undefined || pr.protocol === 'TCP')) containerPorts.set(name, number);
    }
  }
  const phase = str(status?.phase);
  let readyCondition: boolean | undefined;
  for (const c of array(status?.conditions)) {
    const cr = record(c);
    if (cr?.type === 'Ready') readyCondition = cr.status === 'True';
  }
  const running = phase === undefined || phase === 'Running';
  let labels = meta.labels;
  if (options.stripLabels === true) {
    const kept: Record<string, string> = {};
    for (const k of REMOTE_POD_LABELS) if (labels[k] !== undefined) kept[k] = labels[k];
    labels = kept;
  }
  return {
    key: `${namespace}/${meta.name}`,
    name: meta.name,
    namespace,
    node: str(spec?.nodeName) ?? '',
    ip: str(status?.podIP),
    phase,
    hostNetwork: spec?.hostNetwork === true,
    serviceAccount: str(spec?.serviceAccountName) ?? str(spec?.serviceAccount),
    labels,
    containerPorts,
    ready: running && (readyCondition ?? true),
    terminating: meta.deleting,
  };
}

export function serviceFacts(raw: unknown): ServiceFacts | undefined {
  const meta = metaOf(raw);
  if (meta === undefined) return undefined;
  const spec = record(record(raw)!.spec);
  const namespace = meta.namespace ?? DEFAULT_NAMESPACE;
  const type = str(spec?.type) ?? 'ClusterIP';
  const ip = str(spec?.clusterIP);
  const clusterIP = type === 'ExternalName' || ip === undefined || ip === 'None' ? undefined : ip;
  const ports: ServicePortFacts[] = [];
  if (type !== 'ExternalName') {
    for (const p of array(spec?.ports)) {
      const pr = record(p);
      const number = port(pr?.port);
      if (number === undefined) continue;
      if (pr?.protocol !== undefined && pr.protocol !== 'TCP') continue;
      const target = pr?.targetPort;
      // targetPort defaults to port; a number-like string ("8080") is what some clients send.
      const targetPort = port(target) ?? (typeof target === 'string' && target !== '' ? (/^[0-9]+$/.test(target) ? port(Number(target)) ?? number : target) : number);
      ports.push({ name: str(pr?.name) ?? '', port: number, targetPort });
    }
  }
  const selectorRaw = record(spec?.selector);
  // An empty selector selects nothing in the endpoints controller: treated as selectorless.
  const selector = type === 'ExternalName' || selectorRaw === undefined || Object.keys(selectorRaw).length === 0 ? undefined : stringMap(selectorRaw);
  return { key: `${namespace}/${meta.name}`, name: meta.name, namespace, type, clusterIP, selector, ports, labels: meta.labels };
}

export function sliceFacts(raw: unknown): SliceFacts | undefined {
  const meta = metaOf(raw);
  if (meta === undefined) return undefined;
  const o = record(raw)!;
  const namespace = meta.namespace ?? DEFAULT_NAMESPACE;
  const serviceName = meta.labels[SERVICE_NAME_LABEL];
  const addressType = str(o.addressType) ?? 'IPv4';
  const ports: SliceFacts['ports'] = [];
  for (const p of array(o.ports)) {
    const pr = record(p);
    const number = port(pr?.port);
    if (number === undefined || (pr?.protocol !== undefined && pr.protocol !== null && pr.protocol !== 'TCP')) continue;
    ports.push({ name: str(pr?.name) ?? '', port: number });
  }
  const endpoints: SliceEndpointFacts[] = [];
  // FQDN slices name hosts, not addresses: nothing the mesh can dial by IP.
  if (addressType === 'IPv4' || addressType === 'IPv6') {
    for (const e of array(o.endpoints)) {
      const er = record(e);
      // kube-proxy uses the first address: the others are the same endpoint.
      const ip = str(array(er?.addresses)[0]);
      if (ip === undefined) continue;
      const conditions = record(er?.conditions);
      const terminating = conditions?.terminating === true;
      // Per the API, an unset `ready` means ready, except on a terminating endpoint.
      const ready = conditions?.ready === undefined || conditions.ready === null ? !terminating : conditions.ready === true;
      const serving = conditions?.serving === undefined || conditions.serving === null ? ready : conditions.serving === true;
      const ref = record(er?.targetRef);
      const refName = str(ref?.name);
      const pod = ref?.kind === 'Pod' && refName !== undefined ? `${str(ref.namespace) ?? namespace}/${refName}` : undefined;
      endpoints.push({ ip, ready, serving, terminating, pod });
    }
  }
  return { key: `${namespace}/${meta.name}`, service: serviceName === undefined ? undefined : `${namespace}/${serviceName}`, ports, endpoints };
}

/**
 * The Kubernetes object shapes Weft reads (the subset of fields it uses), and the internal model
 * that both discovery sources (Kubernetes informers, a local manifest directory) produce.
 * Everything downstream (capture, proxy, policy, lab) reads the model, never raw objects.
 */

export const MESH_LABEL = 'weft.dev/mesh';
export const MESH_ENABLED = 'enabled';
export const MESH_DISABLED = 'disabled';
export const USE_WAYPOINT_LABEL = 'weft.dev/use-waypoint';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
  /** Set when deletion was requested (graceful deletion): the pod is terminating. */
  deletionTimestamp?: string;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

export interface NamespaceObject extends KubeObject {
  kind: 'Namespace';
}

export interface ServiceAccountObject extends KubeObject {
  kind: 'ServiceAccount';
}

export interface ContainerSpec {
  name: string;
  image?: string;
  /** In the lab, command + args are run inside the pod's network namespace. */
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { containerPort: number; name?: string; protocol?: string }[];
}

export interface PodObject extends KubeObject {
  kind: 'Pod';
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    /** A host-network pod shares the node's IP: it is never captured nor found by IP. */
    hostNetwork?: boolean;
    containers: ContainerSpec[];
  };
  status?: {
    podIP?: string;
    phase?: string;
    /** `Ready` decides whether the pod gets new connections (absent: ready once Running). */
    conditions?: { type: string; status: string }[];
  };
}

export interface ServicePort {
  name?: string;
  port: number;
  /** A number, or the name of a container port. Defaults to `port`. */
  targetPort?: number | string;
  protocol?: string;
}

export interface ServiceObject extends KubeObject {
  kind: 'Service';
  spec: {
    /** ClusterIP (default), NodePort, LoadBalancer, ExternalName: only the ClusterIP is modelled. */
    type?: string;
    clusterIP?: string;
    selector?: Record<string, string>;
    /** Absent on ExternalName services and on some headless ones. */
    ports?: ServicePort[];
    externalName?: string;
  };
}

export const ENDPOINT_SLICE_API_VERSION = 'discovery.k8s.io/v1';
/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface EndpointSliceObject extends KubeObject {
  kind: 'EndpointSlice';
  addressType?: string;
  endpoints?: {
    addresses?: string[];
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
    targetRef?: { kind?: string; namespace?: string; name?: string };
    nodeName?: string;
  }[];
  ports?: { name?: string; port?: number; protocol?: string }[] | null;
}

/** Any other kind (policies, routes, gateways): kept as-is for the modules that own them. */
export interface OtherObject extends KubeObject {
  spec?: unknown;
}

export type ManifestObject = NamespaceObject | ServiceAccountObject | PodObject | ServiceObject | EndpointSliceObject | OtherObject;

/** A document that did not parse or validate: reported with its file and the reason. */
export interface ManifestError {
  file: string;
  /** 0-based index of the YAML document in the file, when known (messages count from 1). */
  document?: number;
  /** 1-based line in the file where the problem is, when known. */
  line?: number;
  /** `Pod default/details: spec.containers: required` (without the file). */
  reason: string;
  /** The WEFT_ERR_* code; WEFT_ERR_MANIFEST_INVALID when absent. */
  code?: string;
}

// ---------------------------------------------------------------------------------------------
// Internal model

export interface Workload {
  /** `<namespace>/<name>` */
  key: string;
  name: string;
  namespace: string;
  node: string;
  ip: string;
  serviceAccount: string;
  /** spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> */
  identity: string;
  labels: Record<string, string>;
  /** Namespace opted in and pod not opted out. */
  inMesh: boolean;
  /** `app` / `app.kubernetes.io/name` label or the pod name: the workload name for telemetry. */
  workloadName: string;
  version: string;
  containerPorts: Map<string, number>;
}

export interface Endpoint {
  /** The address connections go to. */
  ip: string;
  /** Resolved target port on the workload. */
  port: number;
  /**
   * The pod behind the address, when discovery knows it. Undefined for an address that is not a
   * known pod (a selectorless Service's hand-made endpoint, the API server behind
   * `kubernetes.default`): such an endpoint is reached directly, never over HBONE.
   */
  workload: Workload | undefined;
}

export interface Service {
  key: string;
  name: string;
  namespace: string;
  clusterIP: string | undefined;
  /** service port -> ready endpoints for it */
  ports: Map<number, Endpoint[]>;
  labels: Record<string, string>;
  hostname: string;
  /**
   * `<namespace>/<name>` of the waypoint (a Gateway of class `weft-waypoint`) that serves this
   * service's traffic: from the label `weft.dev/use-waypoint` on the Service, else on its
   * namespace (`none` on the Service opts out). Undefined: L4 only.
   */
  waypoint: string | undefined;
}

/** The Gateway class whose Gateways are waypoints. */
export const WAYPOINT_GATEWAY_CLASS = 'weft-waypoint';

/**
 * Issue 12 (teams moving from Istio): Istio's names accepted as Weft's own. A Service or
 * namespace labelled `istio.io/use-waypoint` binds as with `weft.dev/use-waypoint` (Weft's label
 * wins when both are set); a Gateway of class `istio-waypoint` is a waypoint like `weft-waypoint`.
 */
export const ACCEPTED_USE_WAYPOINT_LABELS: readonly string[] = [USE_WAYPOINT_LABEL, 'istio.io/use-waypoint'];
export const ACCEPTED_WAYPOINT_GATEWAY_CLASSES: readonly string[] = [WAYPOINT_GATEWAY_CLASS, 'istio-waypoint'];

/** The first accepted use-waypoint label set in `labels` (Weft's first), undefined when none is. */
export function useWaypointLabel(labels: Readonly<Record<string, string>>): string | undefined {
  for (const k of ACCEPTED_USE_WAYPOINT_LABELS) if (labels[k] !== undefined) return labels[k];
  return undefined;
}
/** The label every waypoint pod carries (as Gateway API implementations label what they deploy). */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

/**
 * A waypoint: a Gateway of class `weft-waypoint` and the ready pods that run it (pods in its
 * namespace labelled `gateway.networking.k8s.io/gateway-name: <name>`). Source agents send the
 * traffic of bound services over HBONE to one of `endpoints` (port 15008), expecting `identity`.
 */
export interface Waypoint {
  /** `<namespace>/<name>` of the Gateway. */
  key: string;
  name: string;
  namespace: string;
  /** SPIFFE ID the waypoint's pods present (their service account's). */
  identity: string;
  /** Ready waypoint pods. Empty: the waypoint is down, its services' connections are refused. */
  endpoints: Endpoint[];
}

export interface MeshModel {
  readonly generation: number;
  readonly trustDomain: string;
  readonly namespaces: ReadonlyMap<string, { name: string; labels: Record<string, string> }>;
  readonly workloads: ReadonlyMap<string, Workload>;
  readonly services: ReadonlyMap<string, Service>;
  /** Waypoints by `<namespace>/<name>` of their Gateway. */
  readonly waypoints: ReadonlyMap<string, Waypoint>;
  /** Every object of a kind the core model does not interpret (policies, routes, gateways). */
  readonly others: readonly OtherObject[];
  workloadByIp(ip: string): Workload | undefined;
  /** Service whose ClusterIP is `ip`. */
  serviceByVip(ip: string): Service | undefined;
  workloadsOnNode(node: string): Workload[];
  /**
   * A number that moves whenever a workload on `node` appears, goes, or changes: callers that
   * only care about one node (capture) skip updates that did not touch it.
   */
  nodeVersion(node: string): number;
  /** A scheduled pod that has no IP yet (ip ''), by `<namespace>/<name>`: what the CNI plugin asks about. */
  pendingWorkload?(key: string): Workload | undefined;
  pendingWorkloads?(): Workload[];
}

/** Input discovery refused, as the admin API shows it (and `weft lab apply` prints it). */
export interface Refusal {
  /** `Pod shop/cart`, or the file for a manifest that did not parse. */
  object: string;
  file?: string;
  code: string;
  reason: string;
}

/**
 * Where the model comes from: a local manifest directory (LocalSource) or a Kubernetes API
 * server (KubernetesSource). `start` resolves with the first model; later models arrive as
 * 'update' events; 'invalid' reports input that was refused (the last good state stays).
 */
export interface DiscoverySource {
  start(): Promise<MeshModel>;
  stop(): Promise<void>;
  current(): MeshModel;
  on(event: 'update', listener: (model: MeshModel) => void): this;
  on(event: 'invalid', listener: (errors: ManifestError[]) => void): this;
  /** What is refused right now (each entry goes away once a good version replaces it). */
  refusals(): Refusal[];
  /** Local source: when the last completed read of the directory began (epoch ms). */
  lastReadStartedAt?(): number | undefined;
  /** Kubernetes source: the newest resourceVersion seen per kind. */
  resourceVersions?(): Record<string, string>;
}

/**
 * What a waypoint Gateway deploys (L7PLAN.md "Waypoint pods"), as one pure function that both the
 * lab (for every Gateway of class `weft-waypoint` it is given) and `weft waypoint generate` (for a
 * real cluster) use, so the two cannot drift: for Gateway NAME in NS a ServiceAccount NAME, a
 * Deployment NAME (1 replica) whose pods carry the gateway-name label and `weft.dev/mesh:
 * disabled` (a waypoint does its own mutual TLS: the node agent must never capture it, as Istio's
 * waypoints carry `istio.io/dataplane-mode: none`), and a ClusterIP Service NAME on 15008 (mesh).
 * Only how the `weft waypoint` process is started and where its credentials come from differ
 * between the two, and the caller says that (options).
 */
import { HBONE_PORT, METRICS_PORT, READINESS_PORT } from '../config.js';
import { ACCEPTED_WAYPOINT_GATEWAY_CLASSES, GATEWAY_NAME_LABEL, MESH_DISABLED, MESH_LABEL, WAYPOINT_GATEWAY_CLASS, type KubeObject } from '../discovery/types.js';

export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';
/** The listener a waypoint Gateway has (Istio's waypoints have the same one). */
export const WAYPOINT_LISTENER = { name: 'mesh', port: HBONE_PORT, protocol: 'HBONE' } as const;

export interface GatewayObject extends KubeObject {
  kind: 'Gateway';
  spec: { gatewayClassName?: string; listeners?: { name: string; port: number; protocol: string }[] };
}

/**
 * Whether `o` is a Gateway that asks for a waypoint: its class is weft-waypoint, or Istio's
 * istio-waypoint (what `istioctl waypoint apply` writes), which discovery binds as Weft's own.
 */
export function isWaypointGateway(o: KubeObject): o is GatewayObject {
  if (o.kind !== 'Gateway' || !o.apiVersion.startsWith('gateway.networking.k8s.io/')) return false;
  const spec = (o as { spec?: unknown }).spec;
  return typeof spec === 'object' && spec !== null && ACCEPTED_WAYPOINT_GATEWAY_CLASSES.includes((spec as { gatewayClassName?: unknown }).gatewayClassName as string);
}

export interface WaypointObjectOptions {
  /** argv that starts the weft CLI: `['weft']` in the lab (it resolves it), `[node, .../main.js]` in the image. */
  cli: string[];
  /** Discovery and CA flags of `weft waypoint` (`--manifests DIR` or `--in-cluster`, `--ca`, ...). */
  args: string[];
  /** The container image; the lab needs none. */
  image?: string;
  /** Kubernetes additions to the pod: volumes and mounts, security context, resources. */
  pod?: {
    volumes: Record<string, unknown>[];
    volumeMounts: Record<string, unknown>[];
    securityContext?: Record<string, unknown>;
    resources?: Record<string, unknown>;
  };
  /** Extra environment of the container (NODE_NAME from the downward API is always there). */
  env?: { name: string; value: string }[];
}

/** The labels of a waypoint's pods (also its Deployment's and Service's selector: the first one). */
export function waypointPodLabels(name: string): Record<string, string> {
  return { [GATEWAY_NAME_LABEL]: name, [MESH_LABEL]: MESH_DISABLED };
}

/** How one kind of proxy (the waypoint, the ingress gateway) differs in what it deploys. */
export interface ProxyShape {
  /** The container's name and the CLI subcommand: `waypoint`, `gateway`. */
  readonly command: string;
  /** Its ports before metrics and readiness. */
  readonly ports: readonly { readonly name: string; readonly containerPort: number }[];
  /** Capabilities the container adds (the gateway: NET_BIND_SERVICE, for ports below 1024). */
  readonly addCapabilities?: readonly string[];
  /** The Service's spec (its selector is added). */
  readonly service: { readonly type: 'ClusterIP' | 'LoadBalancer'; readonly ports: readonly Record<string, unknown>[] };
}

/**
 * ServiceAccount, Deployment and Service of a proxy for `gateway`, in that order: the waypoint's
 * (waypointObjects) and the ingress gateway's (agent/gateway/objects.ts) are this with their shape.
 */
export function proxyObjects(gateway: GatewayObject, options: WaypointObjectOptions, shape: ProxyShape): KubeObject[] {
  const name = gateway.metadata.name;
  const namespace = gateway.metadata.namespace ?? 'default';
  const owner =
    gateway.metadata.uid === undefined
      ? {}
      : { ownerReferences: [{ apiVersion: gateway.apiVersion, kind: 'Gateway', name, uid: gateway.metadata.uid, controller: true, blockOwnerDeletion: true }] };
  const meta = { name, namespace, labels: { [GATEWAY_NAME_LABEL]: name }, ...owner };
  const selector = { [GATEWAY_NAME_LABEL]: name };
  const securityContext =
    shape.addCapabilities !== undefined ? { ...(options.pod?.securityContext ?? {}), capabilities: { add: [...shape.addCapabilities] } } : options.pod?.securityContext;
  const container: Record<string, unknown> = {
    name: shape.command,
    ...(options.image !== undefined ? { image: options.image, imagePullPolicy: 'IfNotPresent' } : {}),
    command: options.cli,
    args: [shape.command, `--name=${name}`, `--namespace=${namespace}`, ...options.args],
    env: [
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      ...(options.env ?? []),
    ],
    ports: [...shape.ports, { name: 'metrics', containerPort: METRICS_PORT }, { name: 'readiness', containerPort: READINESS_PORT }],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: READINESS_PORT }, periodSeconds: 2 },
    ...(options.pod?.resources !== undefined ? { resources: options.pod.resources } : {}),
    ...(securityContext !== undefined ? { securityContext } : {}),
    ...(options.pod !== undefined ? { volumeMounts: options.pod.volumeMounts } : {}),
  };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta } as KubeObject,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta,
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels: waypointPodLabels(name),
            annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORT), 'prometheus.io/path': '/metrics' },
          },
          spec: {
            serviceAccountName: name,
            terminationGracePeriodSeconds: 30,
            containers: [container],
            ...(options.pod !== undefined ? { volumes: options.pod.volumes } : {}),
          },
        },
      },
    } as KubeObject,
    { apiVersion: 'v1', kind: 'Service', metadata: meta, spec: { type: shape.service.type, selector, ports: shape.service.ports } } as KubeObject,
  ];
}

/** ServiceAccount, Deployment and Service of the waypoint for `gateway`, in that order. */
export function waypointObjects(gateway: GatewayObject, options: WaypointObjectOptions): KubeObject[] {
  return proxyObjects(gateway, options, {
    command: 'waypoint',
    ports: [{ name: 'hbone', containerPort: HBONE_PORT }],
    service: { type: 'ClusterIP', ports: [{ name: WAYPOINT_LISTENER.name, port: HBONE_PORT, targetPort: HBONE_PORT, protocol: 'TCP' }] },
  });
}

/** A waypoint Gateway as `weft waypoint generate` prints it (and as a user writes one). */
export function waypointGateway(name: string, namespace: string): GatewayObject {
  return {
    apiVersion: GATEWAY_API_VERSION,
    kind: 'Gateway',
    metadata: { name, namespace },
    spec: { gatewayClassName: WAYPOINT_GATEWAY_CLASS, listeners: [{ ...WAYPOINT_LISTENER }] },
  };
}

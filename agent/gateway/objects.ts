/**
 * What an ingress Gateway (class `weft`) deploys, the sibling of waypointObjects
 * (agent/waypoint/objects.ts) and built the same way so the lab and a real cluster cannot drift:
 * for Gateway NAME in NS a ServiceAccount NAME (the gateway's identity
 * spiffe://<td>/ns/NS/sa/NAME), a Deployment NAME (1 replica) running `weft gateway`, its pods
 * labelled with the gateway-name label and `weft.dev/mesh: disabled` (the gateway does its own
 * mutual TLS to the backends, as the waypoint: the node agent must not capture it), and a
 * Service NAME of type LoadBalancer with one port per listener port (Istio's ingress gateway
 * Service is a LoadBalancer too): the external address outside the cluster.
 */
import { METRICS_PORT, READINESS_PORT } from '../config.js';
import { GATEWAY_NAME_LABEL, type KubeObject } from '../discovery/types.js';
import { waypointPodLabels, type GatewayObject as WaypointGatewayObject, type WaypointObjectOptions } from '../waypoint/objects.js';
import { INGRESS_GATEWAY_CLASS } from './config.js';

export type IngressGatewayObject = WaypointGatewayObject;

/** Whether `o` is a Gateway for the ingress gateway (class weft). */
export function isIngressGatewayObject(o: KubeObject): o is IngressGatewayObject {
  if (o.kind !== 'Gateway' || !o.apiVersion.startsWith('gateway.networking.k8s.io/')) return false;
  const spec = (o as { spec?: unknown }).spec;
  return typeof spec === 'object' && spec !== null && (spec as { gatewayClassName?: unknown }).gatewayClassName === INGRESS_GATEWAY_CLASS;
}

/** The listener ports of the Gateway, each once, in order. */
function listenerPorts(gateway: IngressGatewayObject): number[] {
  const ports: number[] = [];
  for (const l of gateway.spec.listeners ?? []) if (Number.isInteger(l.port) && l.port > 0 && l.port < 65536 && !ports.includes(l.port)) ports.push(l.port);
  return ports;
}

/** ServiceAccount, Deployment and Service of the ingress gateway for `gateway`, in that order. */
export function gatewayObjects(gateway: IngressGatewayObject, options: WaypointObjectOptions): KubeObject[] {
  const name = gateway.metadata.name;
  const namespace = gateway.metadata.namespace ?? 'default';
  const owner =
    gateway.metadata.uid === undefined
      ? {}
      : { ownerReferences: [{ apiVersion: gateway.apiVersion, kind: 'Gateway', name, uid: gateway.metadata.uid, controller: true, blockOwnerDeletion: true }] };
  const meta = { name, namespace, labels: { [GATEWAY_NAME_LABEL]: name }, ...owner };
  const selector = { [GATEWAY_NAME_LABEL]: name };
  const ports = listenerPorts(gateway);
  const container: Record<string, unknown> = {
    name: 'gateway',
    ...(options.image !== undefined ? { image: options.image, imagePullPolicy: 'IfNotPresent' } : {}),
    command: options.cli,
    args: ['gateway', `--name=${name}`, `--namespace=${namespace}`, ...options.args],
    env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }, ...(options.env ?? [])],
    ports: [...ports.map((p) => ({ name: `listener-${p}`, containerPort: p })), { name: 'metrics', containerPort: METRICS_PORT }, { name: 'readiness', containerPort: READINESS_PORT }],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: READINESS_PORT }, periodSeconds: 2 },
    ...(options.pod?.resources !== undefined ? { resources: options.pod.resources } : {}),
    // Ports below 1024 without root: the capability only (a cluster's pod security may forbid more).
    securityContext: { ...(options.pod?.securityContext ?? {}), capabilities: { add: ['NET_BIND_SERVICE'] } },
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
          metadata: { labels: waypointPodLabels(name), annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORT), 'prometheus.io/path': '/metrics' } },
          spec: { serviceAccountName: name, terminationGracePeriodSeconds: 30, containers: [container], ...(options.pod !== undefined ? { volumes: options.pod.volumes } : {}) },
        },
      },
    } as KubeObject,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta,
      spec: { type: 'LoadBalancer', selector, ports: ports.map((p) => ({ name: `listener-${p}`, port: p, targetPort: p, protocol: 'TCP' })) },
    } as KubeObject,
  ];
}

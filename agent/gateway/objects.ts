/**
 * What an ingress Gateway (class `weft`) deploys, the sibling of waypointObjects
 * (agent/waypoint/objects.ts proxyObjects, one builder for both) so the lab and a real cluster cannot drift:
 * for Gateway NAME in NS a ServiceAccount NAME (the gateway's identity
 * spiffe://<td>/ns/NS/sa/NAME), a Deployment NAME (1 replica) running `weft gateway`, its pods
 * labelled with the gateway-name label and `weft.dev/mesh: disabled` (the gateway does its own
 * mutual TLS to the backends, as the waypoint: the node agent must not capture it), and a
 * Service NAME of type LoadBalancer with one port per listener port (Istio's ingress gateway
 * Service is a LoadBalancer too): the external address outside the cluster.
 */
import type { KubeObject } from '../discovery/types.js';
import { proxyObjects, type GatewayObject as WaypointGatewayObject, type WaypointObjectOptions } from '../waypoint/objects.js';
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
  const ports = listenerPorts(gateway);
  return proxyObjects(gateway, options, {
    command: 'gateway',
    ports: ports.map((p) => ({ name: `listener-${p}`, containerPort: p })),
    // Ports below 1024 without root: the capability only (a cluster's pod security may forbid more).
    addCapabilities: ['NET_BIND_SERVICE'],
    service: { type: 'LoadBalancer', ports: ports.map((p) => ({ name: `listener-${p}`, port: p, targetPort: p, protocol: 'TCP' })) },
  });
}

/**
 * The Gateway API as a cluster has it once its standard CRDs are installed
 * (`kubectl apply -f standard-install.yaml`): the CRDs of GatewayClass, Gateway, HTTPRoute,
 * GRPCRoute and ReferenceGrant, so their kinds are served (discovery, kubectl apply/get, watches)
 * the way any CRD's are here; and the `weft-waypoint` GatewayClass, as Istio's control plane
 * creates `istio-waypoint`. The CRDs carry no schema: this test double validates no CRD's objects.
 */
import { WAYPOINT_GATEWAY_CLASS } from '../../discovery/types.js';
import type { JsonObject } from './types.js';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** The release whose kinds and versions these are (the standard channel). */
export const GATEWAY_API_BUNDLE_VERSION = 'v1.2.1';
/** What the `weft-waypoint` GatewayClass names as its controller. */
export const WAYPOINT_CONTROLLER = 'weft.dev/waypoint';

interface Kind {
  kind: string;
  plural: string;
  scope: 'Namespaced' | 'Cluster';
  versions: string[];
  shortNames?: string[];
  columns?: { name: string; jsonPath: string }[];
}

const KINDS: readonly Kind[] = [
  { kind: 'GatewayClass', plural: 'gatewayclasses', scope: 'Cluster', versions: ['v1'], shortNames: ['gc'], columns: [{ name: 'Controller', jsonPath: '.spec.controllerName' }] },
  { kind: 'Gateway', plural: 'gateways', scope: 'Namespaced', versions: ['v1'], shortNames: ['gtw'], columns: [{ name: 'Class', jsonPath: '.spec.gatewayClassName' }] },
  { kind: 'HTTPRoute', plural: 'httproutes', scope: 'Namespaced', versions: ['v1'], columns: [{ name: 'Hostnames', jsonPath: '.spec.hostnames' }] },
  { kind: 'GRPCRoute', plural: 'grpcroutes', scope: 'Namespaced', versions: ['v1'], columns: [{ name: 'Hostnames', jsonPath: '.spec.hostnames' }] },
  { kind: 'ReferenceGrant', plural: 'referencegrants', scope: 'Namespaced', versions: ['v1beta1'], shortNames: ['refgrant'] },
];

/** The CustomResourceDefinition objects, as the standard install creates them (names, versions, status subresource). */
export function gatewayApiCrds(): JsonObject[] {
  return KINDS.map((k) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${k.plural}.${GATEWAY_API_GROUP}`,
      annotations: { 'gateway.networking.k8s.io/bundle-version': GATEWAY_API_BUNDLE_VERSION, 'gateway.networking.k8s.io/channel': 'standard' },
    },
    spec: {
      group: GATEWAY_API_GROUP,
      names: { kind: k.kind, listKind: `${k.kind}List`, plural: k.plural, singular: k.kind.toLowerCase(), categories: ['gateway-api'], ...(k.shortNames ? { shortNames: k.shortNames } : {}) },
      scope: k.scope,
      versions: k.versions.map((v, i) => ({
        name: v,
        served: true,
        storage: i === 0,
        subresources: { status: {} },
        additionalPrinterColumns: [...(k.columns ?? []).map((c) => ({ name: c.name, type: 'string', jsonPath: c.jsonPath })), { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      })),
    },
  }));
}

/** The GatewayClass of Weft's waypoints (Accepted, as its controller would mark it). */
export function waypointGatewayClass(): JsonObject {
  return {
    apiVersion: `${GATEWAY_API_GROUP}/v1`,
    kind: 'GatewayClass',
    metadata: { name: WAYPOINT_GATEWAY_CLASS },
    spec: { controllerName: WAYPOINT_CONTROLLER, description: 'Weft waypoints: Gateways of this class with an HBONE listener on 15008 carry the L7 traffic of the services that use them' },
  };
}

/**
 * How the local lab runs a waypoint Gateway's pods (waypointObjects, agent/waypoint/objects.ts):
 * `weft waypoint` (the lab resolves `weft` to its own CLI) reading the lab's manifests directory
 * as the agents do, with the CA flags of the agent of the node the pod lands on (its token file
 * is named after the node: `$(NODE_NAME)` expands when the pod starts, as Kubernetes expands it).
 * WEFT_LAB_WAYPOINT_CLI (space-separated argv) replaces `weft` as the program the pods run: a
 * stand-in in tests, another build when measuring.
 */
import type { WaypointObjectOptions } from '../waypoint/objects.js';
import { LAB_CA_URL, labCaPaths } from './ca.js';
import { labPaths } from './paths.js';
import type { SpecOptions } from './spec.js';

export function labWaypointOptions(lab: string): WaypointObjectOptions {
  const ca = labCaPaths(lab);
  return {
    cli: process.env['WEFT_LAB_WAYPOINT_CLI']?.split(' ').filter((a) => a !== '') ?? ['weft'],
    args: [`--manifests=${labPaths(lab).manifestsDir}`, `--ca=${LAB_CA_URL}`, `--ca-token-file=${ca.tokenFile('$(NODE_NAME)')}`, `--ca-root=${ca.root}`],
  };
}

/** What every clusterSpec of lab `lab` is built with. */
export function labSpecOptions(lab: string): SpecOptions {
  // An ingress Gateway's pods (agent/gateway/objects.ts) run `weft gateway` with the same flags.
  return { waypoint: labWaypointOptions(lab), gateway: labWaypointOptions(lab) };
}

/**
 * A Gateway of class weft annotated `weft.dev/ingress-controller: "true"` is also the cluster's
 * ingress controller (`weft gateway --ingress`: Ingresses of class weft, Istio Gateways with
 * selector istio: ingressgateway), as istio-ingressgateway is in an Istio install. The lab has
 * no Helm values to say which gateway that is; the annotation says it on the Gateway itself.
 */
export const INGRESS_CONTROLLER_ANNOTATION = 'weft.dev/ingress-controller';

/** The options of `gateway`'s pods: `base`, plus --ingress when the Gateway asks for it. */
export function gatewayOptionsFor(gateway: { metadata: { annotations?: Record<string, string> } }, base: WaypointObjectOptions): WaypointObjectOptions {
  return gateway.metadata.annotations?.[INGRESS_CONTROLLER_ANNOTATION] === 'true' ? { ...base, args: [...base.args, '--ingress'] } : base;
}

/**
 * Waypoints from Gateway API objects, and which services bind to them (issue 11, point 2): the
 * pure part, no state. The store (store.ts) keeps them up to date incrementally.
 *
 * - A Gateway (`gateway.networking.k8s.io/v1`) of class `weft-waypoint` is a waypoint when it has
 *   a listener `{protocol: HBONE, port: 15008}`; one of that class without it is refused with the
 *   field and the reason (a Gateway of any other class is someone else's and is ignored).
 * - A Service's waypoint: the label `weft.dev/use-waypoint: NAME` on the Service, else on its
 *   namespace; `none` on the Service opts it out of its namespace's waypoint. The waypoint is the
 *   Gateway NAME in the service's own namespace.
 */
import { HBONE_PORT } from '../config.js';
import { DEFAULT_NAMESPACE } from './facts.js';
import { ACCEPTED_WAYPOINT_GATEWAY_CLASSES, GATEWAY_NAME_LABEL, WAYPOINT_GATEWAY_CLASS, useWaypointLabel } from './types.js';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_VERSION = `${GATEWAY_API_GROUP}/v1`;
/** The listener protocol of a waypoint's mesh port (as Istio's waypoints declare it). */
export const HBONE_PROTOCOL = 'HBONE';
/** The label value that opts a Service out of its namespace's waypoint. */
export const NO_WAYPOINT = 'none';

export type GatewayFacts =
  /** Not a waypoint (another class): ignored, as another implementation's Gateway. */
  | { readonly kind: 'ignored'; readonly key: string }
  /** A waypoint Gateway that does not validate: refused, with the field path and the problem. */
  | { readonly kind: 'invalid'; readonly key: string; readonly name: string; readonly namespace: string; readonly reason: string }
  | { readonly kind: 'waypoint'; readonly key: string; readonly name: string; readonly namespace: string };

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** What a Gateway object is to Weft; undefined without a name (nothing to key it by). */
export function gatewayFacts(raw: unknown): GatewayFacts | undefined {
  const o = record(raw);
  const meta = record(o?.metadata);
  const name = typeof meta?.name === 'string' && meta.name !== '' ? meta.name : undefined;
  if (o === undefined || name === undefined) return undefined;
  const namespace = typeof meta?.namespace === 'string' && meta.namespace !== '' ? meta.namespace : DEFAULT_NAMESPACE;
  const key = `${namespace}/${name}`;
  const spec = record(o.spec);
  if (spec === undefined || !ACCEPTED_WAYPOINT_GATEWAY_CLASSES.includes(spec.gatewayClassName as string)) return { kind: 'ignored', key };
  const invalid = (reason: string): GatewayFacts => ({ kind: 'invalid', key, name, namespace, reason });
  if (o.apiVersion !== GATEWAY_API_VERSION) return invalid(`apiVersion: ${JSON.stringify(o.apiVersion)} is not ${GATEWAY_API_VERSION}`);
  if (!Array.isArray(spec.listeners)) return invalid(`spec.listeners: required, with a listener {protocol: ${HBONE_PROTOCOL}, port: ${HBONE_PORT}}`);
  const problems: string[] = [];
  let mesh = false;
  spec.listeners.forEach((l: unknown, i: number) => {
    const listener = record(l);
    if (listener === undefined) return problems.push(`spec.listeners[${i}]: must be an object`);
    if (listener.protocol !== HBONE_PROTOCOL) return;
    if (listener.port === HBONE_PORT) mesh = true;
    else problems.push(`spec.listeners[${i}].port: an ${HBONE_PROTOCOL} listener must be on port ${HBONE_PORT}, not ${JSON.stringify(listener.port)}`);
    return;
  });
  if (!mesh) problems.push(`spec.listeners: no listener {protocol: ${HBONE_PROTOCOL}, port: ${HBONE_PORT}}: a ${WAYPOINT_GATEWAY_CLASS} Gateway must have one`);
  return problems.length > 0 ? invalid(problems.join('; ')) : { kind: 'waypoint', key, name, namespace };
}

/**
 * `<namespace>/<name>` of the waypoint a service binds to, from its labels and its namespace's;
 * undefined: none (L4 only).
 */
export function serviceWaypoint(namespace: string, serviceLabels: Record<string, string>, namespaceLabels: Record<string, string>): string | undefined {
  const own = useWaypointLabel(serviceLabels);
  const name = own ?? useWaypointLabel(namespaceLabels);
  if (name === undefined || name === '' || name === NO_WAYPOINT) return undefined;
  return `${namespace}/${name}`;
}

/**
 * A waypoint's own Service (selecting its pods by the gateway-name label) never binds to a
 * waypoint, even in a namespace that uses one: its traffic is the waypoint's HBONE.
 */
export function isWaypointFrontend(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return (selector !== undefined && selector[GATEWAY_NAME_LABEL] !== undefined) || labels[GATEWAY_NAME_LABEL] !== undefined;
}

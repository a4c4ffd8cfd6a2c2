/**
 * Istio's standard metric labels, shared by the TCP metrics (agents) and the request metrics
 * (waypoint): what each label means and how its value is derived from the discovery model, so
 * that Istio's dashboards and Kiali group Weft's series as they group Istio's.
 *
 * Reference: https://istio.io/latest/docs/reference/config/metrics/ (label list), Istio's
 * pkg/config/labels CanonicalService (canonical name and revision fallbacks), its
 * GetDeployMetaFromPod (workload name), and ztunnel's src/proxy/metrics.rs (what an ambient
 * node proxy reports for TCP).
 */
import type { Workload } from '../discovery/types.js';
import { serviceHostname } from '../discovery/store.js';

export const ISTIO_METRICS_REFERENCE = 'https://istio.io/latest/docs/reference/config/metrics/';

export const UNKNOWN = 'unknown';

/** The labels Istio puts on every standard metric, TCP and request alike (peer and service labels). */
export const PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

export type PeerLabelName = (typeof PEER_LABELS)[number];

export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';
const NAME_LABELS = [CANONICAL_NAME_LABEL, 'app.kubernetes.io/name', 'app'] as const;
const REVISION_LABELS = [CANONICAL_REVISION_LABEL, 'app.kubernetes.io/version', 'version'] as const;
/** Istio's canonical revision when no label names one. */
export const DEFAULT_CANONICAL_REVISION = 'latest';
const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';

function firstLabel(labels: Record<string, string>, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = labels[k];
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * Istio's workload name: the Deployment that owns the pod (its ReplicaSet's name without the
 * `pod-template-hash` suffix), else the pod's name. The model has no owner references, so a
 * Deployment's pod is recognised as Istio's heuristic does: by its `pod-template-hash` label,
 * whose value ends the ReplicaSet's name, which begins the pod's name.
 */
export function istioWorkloadName(w: Pick<Workload, 'name' | 'labels'>): string {
  const hash = w.labels[POD_TEMPLATE_HASH_LABEL];
  if (hash) {
    const marker = `-${hash}-`;
    const at = w.name.lastIndexOf(marker);
    if (at > 0) return w.name.slice(0, at);
  }
  return w.name;
}

/** Istio's canonical service of a workload: canonical-name label, app.kubernetes.io/name, app, else the workload name. */
export function canonicalService(w: Pick<Workload, 'name' | 'labels'>): string {
  return firstLabel(w.labels, NAME_LABELS) ?? istioWorkloadName(w);
}

/** Istio's canonical revision: canonical-revision label, app.kubernetes.io/version, version, else `latest`. */
export function canonicalRevision(w: Pick<Workload, 'labels'>): string {
  return firstLabel(w.labels, REVISION_LABELS) ?? DEFAULT_CANONICAL_REVISION;
}

export interface PeerLabelInput {
  reporter: 'source' | 'destination' | 'waypoint';
  source: Workload | undefined;
  /** SPIFFE ID of the source when it was authenticated (mutual TLS), else undefined. */
  sourcePrincipal: string | undefined;
  destination: Workload | undefined;
  /** `<namespace>/<name>` of the destination service, if the traffic was to one. */
  destinationService: string | undefined;
  /** SPIFFE ID the destination proved (or is expected to prove); undefined: the destination workload's if it is meshed. */
  destinationPrincipal?: string | undefined;
  requestProtocol: string;
  responseFlags: string;
  mutualTls: boolean;
  clusterName: string;
}

/**
 * The connection_security_policy value. A proxy that received the connection knows whether it
 * was mutual TLS (`mutual_tls`) or plaintext (`none`), as Envoy reports at the destination; a
 * source proxy's plaintext connection is `unknown` (Istio's docs, and ztunnel's outbound path).
 */
export function connectionSecurityPolicy(reporter: PeerLabelInput['reporter'], mutualTls: boolean): string {
  if (mutualTls) return 'mutual_tls';
  return reporter === 'source' ? UNKNOWN : 'none';
}

/** Every label of PEER_LABELS for one connection or request. */
export function peerLabels(input: PeerLabelInput): Record<PeerLabelName, string> {
  const src = input.source;
  const dst = input.destination;
  let serviceName = UNKNOWN;
  let serviceNamespace = UNKNOWN;
  let serviceHost = UNKNOWN;
  if (input.destinationService) {
    const slash = input.destinationService.indexOf('/');
    serviceNamespace = input.destinationService.slice(0, slash);
    serviceName = input.destinationService.slice(slash + 1);
    serviceHost = serviceHostname(serviceName, serviceNamespace);
  } else if (dst) {
    serviceNamespace = dst.namespace;
  }
  return {
    reporter: input.reporter,
    source_workload: src ? istioWorkloadName(src) : UNKNOWN,
    source_workload_namespace: src?.namespace ?? UNKNOWN,
    // A source reporter knows its own workload's identity; anyone else only what mutual TLS proved.
    source_principal: input.sourcePrincipal ?? (input.reporter === 'source' && src ? src.identity : UNKNOWN),
    source_app: src?.labels['app'] ?? UNKNOWN,
    source_version: src?.labels['version'] ?? UNKNOWN,
    source_canonical_service: src ? canonicalService(src) : UNKNOWN,
    source_canonical_revision: src ? canonicalRevision(src) : UNKNOWN,
    source_cluster: src ? input.clusterName : UNKNOWN,
    destination_workload: dst ? istioWorkloadName(dst) : UNKNOWN,
    destination_workload_namespace: dst?.namespace ?? UNKNOWN,
    destination_principal: input.destinationPrincipal ?? (dst?.inMesh ? dst.identity : UNKNOWN),
    destination_app: dst?.labels['app'] ?? UNKNOWN,
    destination_version: dst?.labels['version'] ?? UNKNOWN,
    destination_canonical_service: dst ? canonicalService(dst) : UNKNOWN,
    destination_canonical_revision: dst ? canonicalRevision(dst) : UNKNOWN,
    destination_service: serviceHost,
    destination_service_name: serviceName,
    destination_service_namespace: serviceNamespace,
    destination_cluster: dst ? input.clusterName : UNKNOWN,
    request_protocol: input.requestProtocol,
    response_flags: input.responseFlags,
    connection_security_policy: connectionSecurityPolicy(input.reporter, input.mutualTls),
  };
}

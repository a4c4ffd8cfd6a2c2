/**
 * PeerAuthentication: which mTLS mode applies to a workload port. Istio's precedence: the
 * workload-specific policy (selector, in the workload's namespace) over the namespace-wide one
 * over the mesh-wide one (no selector, root namespace); UNSET inherits from the level above; a
 * port-level mode of the workload policy overrides the workload mode for that port. Nothing at all
 * means PERMISSIVE. When several policies compete at one level, the oldest wins (creationTimestamp,
 * then namespace/name), as in istiod.
 */
import type { PeerAuthentication } from './schema.js';

/** Effective mode; UNSET never comes out, it is resolved to the parent's mode. */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface CompiledPeerAuthentication {
  readonly key: string;
  readonly namespace: string;
  readonly selector: readonly (readonly [string, string])[] | null;
  /** undefined = UNSET (inherit) */
  readonly mode: MtlsMode | undefined;
  readonly portModes: ReadonlyMap<number, MtlsMode>;
  /** Milliseconds since the epoch, or +Infinity when unknown (sorts after every dated policy). */
  readonly created: number;
}

/** The resolved mTLS settings of one workload. */
export interface WorkloadMtls {
  /** Mode for ports without a port-level setting. */
  readonly mode: MtlsMode;
  /** Port-level overrides (workload port -> mode). */
  readonly ports: ReadonlyMap<number, MtlsMode>;
  /** `namespace/name` of the policy that set `mode`, undefined for the built-in PERMISSIVE default. */
  readonly policy: string | undefined;
  /** `namespace/name` of the workload policy when it sets port-level modes. */
  readonly portPolicy: string | undefined;
}

function resolved(mode: string | undefined): MtlsMode | undefined {
  return mode === 'STRICT' || mode === 'PERMISSIVE' || mode === 'DISABLE' ? mode : undefined;
}

export function compilePeerAuthentication(p: PeerAuthentication, defaultNamespace: string): CompiledPeerAuthentication {
  const namespace = p.metadata.namespace ?? defaultNamespace;
  const spec = p.spec ?? {};
  const labels = spec.selector?.matchLabels;
  const selector = labels !== undefined && Object.keys(labels).length > 0 ? Object.entries(labels).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)) : null;
  const portModes = new Map<number, MtlsMode>();
  for (const [port, m] of Object.entries(spec.portLevelMtls ?? {})) {
    const mode = resolved(m.mode);
    if (mode !== undefined) portModes.set(Number(port), mode);
  }
  const t = p.metadata.creationTimestamp === undefined ? NaN : Date.parse(p.metadata.creationTimestamp);
  return {
    key: `${namespace}/${p.metadata.name}`,
    namespace,
    selector,
    mode: resolved(spec.mtls?.mode),
    portModes,
    created: Number.isNaN(t) ? Number.POSITIVE_INFINITY : t,
  };
}

/** Oldest first, then by key: the order in which competing policies win. */
export function olderFirst(a: CompiledPeerAuthentication, b: CompiledPeerAuthentication): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

const NO_PORTS: ReadonlyMap<number, MtlsMode> = new Map();

/** Resolves mesh -> namespace -> workload (winners already chosen) into the workload's settings. */
export function resolveMtls(
  mesh: CompiledPeerAuthentication | undefined,
  ns: CompiledPeerAuthentication | undefined,
  workload: CompiledPeerAuthentication | undefined,
): WorkloadMtls {
  let mode: MtlsMode = 'PERMISSIVE';
  let policy: string | undefined;
  for (const level of [mesh, ns, workload]) {
    if (level?.mode !== undefined) {
      mode = level.mode;
      policy = level.key;
    }
  }
  const ports = workload !== undefined && workload.portModes.size > 0 ? workload.portModes : NO_PORTS;
  return { mode, ports, policy, portPolicy: ports === NO_PORTS ? undefined : workload!.key };
}

/** Mode for one port of a workload. */
export function mtlsModeOf(m: WorkloadMtls, port: number): MtlsMode {
  return m.ports.size === 0 ? m.mode : (m.ports.get(port) ?? m.mode);
}

/**
 * The one source of truth for Weft's policy kinds: TypeBox schemas that drive runtime validation
 * (policy/validate.ts), the TypeScript types (Static<>), and the CustomResourceDefinitions
 * generated into daemonset/crds/ (policy/crd.ts). Field names and meanings follow Istio's
 * security.istio.io API so that existing policies port by changing the apiVersion.
 */
import { FormatRegistry, Type, type Static, type TSchema } from '@sinclair/typebox';
import { isIpOrCidr } from './ip.js';

export const POLICY_GROUP = 'weft.dev';
export const POLICY_VERSION = 'v1alpha1';
export const POLICY_API_VERSION = `${POLICY_GROUP}/${POLICY_VERSION}`;
export const DEFAULT_ROOT_NAMESPACE = 'weft-system';
/** Istio's security API, accepted as Weft's own (issue 12: Istio's policies apply unchanged). */
export const ISTIO_SECURITY_API_VERSIONS: readonly string[] = ['security.istio.io/v1', 'security.istio.io/v1beta1'];
/** Every apiVersion whose AuthorizationPolicy and PeerAuthentication Weft enforces. */
export const ACCEPTED_POLICY_API_VERSIONS: readonly string[] = [POLICY_API_VERSION, ...ISTIO_SECURITY_API_VERSIONS];

export function isPolicyApiVersion(v: unknown): v is string {
  return typeof v === 'string' && ACCEPTED_POLICY_API_VERSIONS.includes(v);
}

// Formats are global in TypeBox; the `weft-` prefix keeps ours apart from anyone else's. The CRD
// generator drops them (the API server ignores unknown formats) and keeps the `pattern`s.
FormatRegistry.Set('weft-ip-or-cidr', (v) => isIpOrCidr(v));
FormatRegistry.Set('weft-port', (v) => isPortString(v));
FormatRegistry.Set('weft-match', (v) => isMatchPattern(v));

/** A port as Istio writes it in policies: a decimal string, 1-65535. */
export function isPortString(v: string): boolean {
  if (!/^[0-9]{1,5}$/.test(v)) return false;
  const n = Number(v);
  return n >= 1 && n <= 65535;
}

/** `*`, `prefix*`, `*suffix` or an exact value; `*` anywhere else would silently never match. */
export function isMatchPattern(v: string): boolean {
  if (v.length === 0) return false;
  const star = v.indexOf('*');
  if (star === -1 || v === '*') return true;
  if (v.indexOf('*', star + 1) !== -1) return false;
  return star === 0 || star === v.length - 1;
}

/** Per-schema message used by validate.ts instead of TypeBox's generic one (agent/l7/schema.ts uses it too). */
export function msg<T extends TSchema>(schema: T, errorMessage: string): T {
  return Object.assign(schema, { errorMessage });
}

const StringList = (description: string) => Type.Optional(Type.Array(msg(Type.String({ minLength: 1 }), 'must be a non-empty string'), { description }));
const MatchList = (description: string) =>
  Type.Optional(
    Type.Array(
      msg(Type.String({ format: 'weft-match' }), "must be non-empty, with '*' only alone, as a prefix (*suffix) or as a suffix (prefix*)"),
      { description },
    ),
  );
const IpList = (description: string) =>
  Type.Optional(Type.Array(msg(Type.String({ format: 'weft-ip-or-cidr' }), 'not a CIDR or IP address'), { description }));
const PortList = (description: string) =>
  Type.Optional(Type.Array(msg(Type.String({ format: 'weft-port', pattern: '^[0-9]+$' }), 'not a port number (a string, 1-65535)'), { description }));

export const WorkloadSelector = Type.Object(
  {
    matchLabels: Type.Optional(
      Type.Record(Type.String(), msg(Type.String(), 'label values must be strings'), {
        description: 'Labels a workload must carry (all of them). Absent or empty: every workload of the namespace (of the mesh in the root namespace).',
      }),
    ),
  },
  { additionalProperties: false, description: 'Selects the workloads the policy applies to.' },
);

export const PolicyTargetReference = Type.Object(
  {
    group: Type.Optional(Type.String({ description: "'' (or absent) for a Service; gateway.networking.k8s.io for a Gateway or GatewayClass." })),
    kind: Type.String({ minLength: 1, description: 'Service, Gateway (a waypoint) or GatewayClass (every waypoint; root namespace only).' }),
    name: Type.String({ minLength: 1 }),
    namespace: Type.Optional(Type.String({ description: "Absent or the policy's own namespace: cross-namespace references are refused (as in Istio)." })),
  },
  { additionalProperties: false, description: 'A resource the policy attaches to; the waypoint serving it enforces the policy.' },
);

export const Source = Type.Object(
  {
    principals: MatchList('Peer identities (SPIFFE ID without spiffe://, e.g. cluster.local/ns/default/sa/web); exact, prefix*, *suffix or * (any authenticated peer). Requires mTLS.'),
    notPrincipals: MatchList('Peer identities that must not match.'),
    namespaces: MatchList('Namespaces of the peer identity; exact, prefix*, *suffix or *. Requires mTLS.'),
    notNamespaces: MatchList('Peer namespaces that must not match.'),
    ipBlocks: IpList('Source IPs or CIDRs (IPv4 or IPv6), e.g. 198.18.0.0/15.'),
    notIpBlocks: IpList('Source IPs or CIDRs that must not match.'),
    requestPrincipals: StringList('JWT (not supported: refused in a targetRefs policy); fails closed at L4.'),
    notRequestPrincipals: StringList('JWT (not supported: refused in a targetRefs policy); fails closed at L4.'),
    remoteIpBlocks: IpList('L7 only: the original client address (trusted `forwarded`) at a waypoint; fails closed at L4.'),
    notRemoteIpBlocks: IpList('L7 only: original client addresses that must not match; fails closed at L4.'),
  },
  { additionalProperties: false, description: 'All set fields must match; values inside a field are alternatives.' },
);

export const Operation = Type.Object(
  {
    ports: PortList('Destination ports (strings), e.g. ["8080"].'),
    notPorts: PortList('Destination ports that must not match.'),
    hosts: MatchList('L7 only: the Host/:authority as sent, port included, case-insensitive; exact, prefix*, *suffix or *. Enforced by a waypoint, fails closed at L4.'),
    notHosts: MatchList('L7 only; enforced by a waypoint, fails closed at L4.'),
    methods: MatchList('L7 only: the HTTP method (case-sensitive, gRPC is POST). Enforced by a waypoint, fails closed at L4.'),
    notMethods: MatchList('L7 only; enforced by a waypoint, fails closed at L4.'),
    paths: MatchList('L7 only: the normalized path without query (gRPC: /package.Service/Method); exact, prefix*, *suffix or *. Enforced by a waypoint, fails closed at L4.'),
    notPaths: MatchList('L7 only; enforced by a waypoint, fails closed at L4.'),
  },
  { additionalProperties: false, description: 'All set fields must match; values inside a field are alternatives.' },
);

export const Condition = Type.Object(
  {
    key: Type.String({
      minLength: 1,
      description:
        'L4: source.ip, source.namespace, source.principal, destination.ip, destination.port. A waypoint also checks remote.ip and request.headers[NAME]. Other Istio keys (JWT, connection.sni) are refused in a targetRefs policy and fail closed at L4.',
    }),
    values: Type.Optional(Type.Array(Type.String())),
    notValues: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);

export const Rule = Type.Object(
  {
    from: Type.Optional(Type.Array(Type.Object({ source: Source }, { additionalProperties: false }), { description: 'Any of these sources. Absent: any source.' })),
    to: Type.Optional(Type.Array(Type.Object({ operation: Operation }, { additionalProperties: false }), { description: 'Any of these operations. Absent: any operation.' })),
    when: Type.Optional(Type.Array(Condition, { description: 'All of these conditions.' })),
  },
  { additionalProperties: false, description: 'Matches when from, to and when all match.' },
);

export const AuthorizationAction = msg(
  Type.Union([Type.Literal('ALLOW'), Type.Literal('DENY'), Type.Literal('AUDIT')], { description: 'ALLOW (default), DENY or AUDIT.' }),
  'must be one of ALLOW, DENY, AUDIT',
);

export const AuthorizationPolicySpec = Type.Object(
  {
    selector: Type.Optional(WorkloadSelector),
    targetRefs: Type.Optional(
      Type.Array(PolicyTargetReference, {
        maxItems: 16,
        description: 'Attach to a waypoint-handled Service, a waypoint Gateway or the waypoint GatewayClass instead of selecting workloads: enforced by the waypoint (L7), never by node agents.',
      }),
    ),
    targetRef: Type.Optional(Type.Object(PolicyTargetReference.properties, { additionalProperties: false, description: 'Deprecated singular form of targetRefs (one target); not with targetRefs.' })),
    action: Type.Optional(AuthorizationAction),
    rules: Type.Optional(
      Type.Array(Rule, {
        description: 'A policy matches when any rule matches. No rules: matches nothing (an ALLOW policy then allows nothing; a DENY policy denies nothing).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const MtlsMode = msg(
  Type.Union([Type.Literal('UNSET'), Type.Literal('DISABLE'), Type.Literal('PERMISSIVE'), Type.Literal('STRICT')]),
  'must be one of UNSET, DISABLE, PERMISSIVE, STRICT',
);

export const MutualTls = Type.Object(
  { mode: Type.Optional(MtlsMode) },
  { additionalProperties: false, description: 'UNSET (or absent) inherits from the parent level.' },
);

export const PeerAuthenticationSpec = Type.Object(
  {
    selector: Type.Optional(WorkloadSelector),
    mtls: Type.Optional(MutualTls),
    portLevelMtls: Type.Optional(
      Type.Record(Type.String(), MutualTls, { description: 'Per workload port (the port the workload listens on); needs a selector.' }),
    ),
  },
  { additionalProperties: false },
);

/** The subset of metadata the policy engine reads; other metadata fields are allowed and ignored. */
export const PolicyMetadata = Type.Object({
  name: msg(Type.String({ minLength: 1 }), 'must be a non-empty string'),
  namespace: Type.Optional(Type.String({ minLength: 1 })),
  creationTimestamp: Type.Optional(Type.String()),
});

const PolicyApiVersion = msg(Type.Union([Type.Literal(POLICY_API_VERSION), Type.Literal('security.istio.io/v1'), Type.Literal('security.istio.io/v1beta1')]), `must be ${POLICY_API_VERSION}, security.istio.io/v1 or security.istio.io/v1beta1`);

export const AuthorizationPolicyObject = Type.Object({
  apiVersion: PolicyApiVersion,
  kind: Type.Literal('AuthorizationPolicy'),
  metadata: PolicyMetadata,
  spec: Type.Optional(AuthorizationPolicySpec),
});

export const PeerAuthenticationObject = Type.Object({
  apiVersion: PolicyApiVersion,
  kind: Type.Literal('PeerAuthentication'),
  metadata: PolicyMetadata,
  spec: Type.Optional(PeerAuthenticationSpec),
});

export type WorkloadSelectorT = Static<typeof WorkloadSelector>;
export type SourceT = Static<typeof Source>;
export type OperationT = Static<typeof Operation>;
export type ConditionT = Static<typeof Condition>;
export type RuleT = Static<typeof Rule>;
export type AuthorizationActionT = Static<typeof AuthorizationAction>;
export type AuthorizationPolicySpecT = Static<typeof AuthorizationPolicySpec>;
export type MtlsModeT = Static<typeof MtlsMode>;
export type PeerAuthenticationSpecT = Static<typeof PeerAuthenticationSpec>;
export type AuthorizationPolicy = Static<typeof AuthorizationPolicyObject>;
export type PeerAuthentication = Static<typeof PeerAuthenticationObject>;
export type PolicyObject = AuthorizationPolicy | PeerAuthentication;
export type PolicyKind = PolicyObject['kind'];

/** Source fields that need HTTP parsing (ztunnel's list); an L4 enforcer cannot check them. */
export const L7_SOURCE_FIELDS = ['requestPrincipals', 'notRequestPrincipals', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const;
/** Operation fields that need HTTP parsing (ztunnel's list). */
export const L7_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
/** `when` keys an L4 enforcer can check (ztunnel's list). */
export const L4_CONDITION_KEYS = ['source.ip', 'source.namespace', 'source.principal', 'destination.ip', 'destination.port'] as const;
export type L4ConditionKey = (typeof L4_CONDITION_KEYS)[number];
/** `when` keys a waypoint checks besides the L4 ones (plus every `request.headers[NAME]`). */
export const WAYPOINT_CONDITION_KEYS = [...L4_CONDITION_KEYS, 'remote.ip'] as const;
export const HEADER_CONDITION_PREFIX = 'request.headers[';

/** Target kinds a waypoint policy may name, as `group/kind` (the core group is ''). */
export const TARGET_SERVICE = '/Service';
export const TARGET_GATEWAY = 'gateway.networking.k8s.io/Gateway';
export const TARGET_GATEWAY_CLASS = 'gateway.networking.k8s.io/GatewayClass';
export type PolicyTargetReferenceT = Static<typeof PolicyTargetReference>;

/** The policy's targets: targetRefs, else the deprecated targetRef, else none (a selector or namespace-wide policy). */
export function targetRefsOf(spec: AuthorizationPolicySpecT | undefined): readonly PolicyTargetReferenceT[] {
  if (spec === undefined) return [];
  if (spec.targetRefs !== undefined && spec.targetRefs.length > 0) return spec.targetRefs;
  return spec.targetRef === undefined ? [] : [spec.targetRef];
}

/** `group/kind` of a reference; an absent group is the core group (''), as in Gateway API. */
export function targetGroupKind(t: PolicyTargetReferenceT): string {
  const group = t.group === undefined || t.group === 'core' ? '' : t.group;
  return `${group}/${t.kind}`;
}

/**
 * Weft's policy API: pure, I/O-free L4 authorization (AuthorizationPolicy) and peer authentication
 * (PeerAuthentication) with Istio's semantics. See docs/policy.md.
 *
 *   const v = validatePolicyObject(obj);            // refuse bad objects, keep the previous ones
 *   const store = compilePolicies(objects, { rootNamespace: 'weft-system' });
 *   const wp = store.forWorkload({ namespace, labels }); // once per workload (cached)
 *   const d = evaluate(wp, { sourceIp, sourcePrincipal, destinationIp, destinationPort });
 *   const mode = store.mtlsModeFor({ namespace, labels }, port);
 *
 * At a waypoint (policies with targetRefs; see policy/README.md):
 *   const wp = store.forWaypointTarget({ namespace, name, service: 'ns/svc' }); // cached
 *   const d = evaluateRequest(wp, { sourceIp, sourcePrincipal, trustDomain, destinationIp,
 *     destinationPort, method, path, authority, headers, remoteIp });
 *   if (!d.allowed) answer 403 with RBAC_DENIED_BODY, log/count d.policy and d.reason
 *   evaluateWaypointConnection(wp, conn) for non-HTTP traffic through the waypoint
 */
export {
  compilePolicies,
  evaluate,
  evaluateRequest,
  evaluateWaypointConnection,
  mtlsModeForPort,
  PolicyStore,
  RBAC_DENIED_BODY,
  type CompileOptions,
  type DecisionSet,
  type WaypointPolicy,
  type WaypointTarget,
  type DecisionReason,
  type PolicyDecision,
  type PolicyWarning,
  type PolicyWarningCode,
  type RejectedPolicy,
  type WorkloadPolicy,
  type WorkloadRef,
} from './engine.js';
export type { ConnectionInfo, CompiledAuthorizationPolicy, HttpRequestInfo } from './authz.js';
export { normalizeRequestPath } from './http-path.js';
export type { MtlsMode, WorkloadMtls, CompiledPeerAuthentication } from './peer-auth.js';
export { validatePolicyObject, validateAuthorizationPolicy, validatePeerAuthentication, type PolicyValidation, type ValidateOptions } from './validate.js';
export { PolicyValidationError, PolicyDeniedError, MtlsRequiredError, formatFieldErrors, type PolicyFieldError } from './errors.js';
export {
  POLICY_API_VERSION,
  POLICY_GROUP,
  POLICY_VERSION,
  DEFAULT_ROOT_NAMESPACE,
  type AuthorizationPolicy,
  type PeerAuthentication,
  type PolicyObject,
  type PolicyKind,
} from './schema.js';

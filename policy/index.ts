/**
 * Weft's policy API: pure, I/O-free L4 authorization (AuthorizationPolicy) and peer authentication
 * (PeerAuthentication) with Istio's semantics. See docs/policy.md.
 *
 *   const v = validatePolicyObject(obj);            // refuse bad objects, keep the previous ones
 *   const store = compilePolicies(objects, { rootNamespace: 'weft-system' });
 *   const wp = store.forWorkload({ namespace, labels }); // once per workload (cached)
 *   const d = evaluate(wp, { sourceIp, sourcePrincipal, destinationIp, destinationPort });
 *   const mode = store.mtlsModeFor({ namespace, labels }, port);
 */
export {
  compilePolicies,
  evaluate,
  mtlsModeForPort,
  PolicyStore,
  type CompileOptions,
  type DecisionReason,
  type PolicyDecision,
  type PolicyWarning,
  type PolicyWarningCode,
  type RejectedPolicy,
  type WorkloadPolicy,
  type WorkloadRef,
} from './engine.js';
export type { ConnectionInfo, CompiledAuthorizationPolicy } from './authz.js';
export type { MtlsMode, WorkloadMtls, CompiledPeerAuthentication } from './peer-auth.js';
export { validatePolicyObject, validateAuthorizationPolicy, validatePeerAuthentication, type PolicyValidation } from './validate.js';
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

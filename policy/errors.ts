/**
 * Typed errors of the policy module. The engine itself never throws on a connection; these are for
 * the agent's edges: refusing a policy object, and turning a decision into a connection reset.
 */
import { WeftError } from '../agent/errors.js';

/** One problem in a policy object: `path` names the field, e.g. `spec.rules[0].from[0].source.ipBlocks[1]`. */
export interface PolicyFieldError {
  readonly path: string;
  readonly message: string;
}

/** `path: message; path: message` — one line, for logs and status. */
export function formatFieldErrors(errors: readonly PolicyFieldError[]): string {
  return errors.map((e) => (e.path === '' ? e.message : `${e.path}: ${e.message}`)).join('; ');
}

/** A policy object that does not match its schema (WEFT_ERR_POLICY_INVALID); `errors` lists every field. */
export class PolicyValidationError extends WeftError {
  readonly errors: readonly PolicyFieldError[];
  /** `Kind namespace/name` when the object got that far, else undefined. */
  readonly object: string | undefined;
  constructor(object: string | undefined, errors: readonly PolicyFieldError[], options?: { cause?: unknown }) {
    super('WEFT_ERR_POLICY_INVALID', `${object ?? 'policy object'} is invalid: ${formatFieldErrors(errors)}`, options);
    this.name = 'PolicyValidationError';
    this.errors = errors;
    this.object = object;
  }
}

/** A connection refused by an AuthorizationPolicy (WEFT_ERR_POLICY_DENIED). */
export class PolicyDeniedError extends WeftError {
  readonly policy: string | undefined;
  readonly reason: string;
  constructor(workload: string, reason: string, policy: string | undefined) {
    super('WEFT_ERR_POLICY_DENIED', `connection to ${workload} denied: ${reason}${policy === undefined ? '' : ` (policy ${policy})`}`);
    this.name = 'PolicyDeniedError';
    this.policy = policy;
    this.reason = reason;
  }
}

/** Plaintext refused because PeerAuthentication makes the port STRICT (WEFT_ERR_POLICY_MTLS_REQUIRED). */
export class MtlsRequiredError extends WeftError {
  readonly port: number;
  constructor(workload: string, port: number) {
    super('WEFT_ERR_POLICY_MTLS_REQUIRED', `plaintext connection to ${workload} port ${port} refused: PeerAuthentication mode is STRICT`);
    this.name = 'MtlsRequiredError';
    this.port = port;
  }
}

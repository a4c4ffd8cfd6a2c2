/**
 * Typed errors with stable codes. Every code is listed in docs/errors.md (a test checks both ways).
 * Errors are created where they happen, wrapped with `cause`, and turned into a reset, an HTTP
 * status or a metric label only at the edge.
 */
export const ErrorCodes = {
  WEFT_ERR_SYSCALL: 'a system call made through native/ failed (the message names the call and errno)',
  WEFT_ERR_MANIFEST_PARSE: 'a manifest file is not valid YAML',
  WEFT_ERR_MANIFEST_INVALID: 'a manifest document does not match the schema of its kind',
  WEFT_ERR_NETNS_NOT_FOUND: 'no network namespace on this node holds the pod IP',
  WEFT_ERR_CAPTURE_RULES: 'installing or removing the in-pod iptables rules failed',
  WEFT_ERR_NO_ENDPOINT: 'a service has no ready endpoint for the requested port',
  WEFT_ERR_UPSTREAM_CONNECT: 'connecting to the upstream (app or remote pod) failed',
  WEFT_ERR_LAB: 'a lab operation failed (the message says which step)',
  WEFT_ERR_LAB_NOT_FOUND: 'the named lab, pod or namespace does not exist',
  WEFT_ERR_CONFIG: 'a command-line option or configuration value is invalid',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class WeftError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WeftError';
    this.code = code;
  }
}

/** errno name for a positive errno value, e.g. 1 -> EPERM, so messages say what to fix. */
export function isWeftError(err: unknown, code?: ErrorCode): err is WeftError {
  return err instanceof WeftError && (code === undefined || err.code === code);
}

/**
 * Typed errors with stable codes. Every code is listed in docs/errors.md (a test checks both ways).
 * Errors are created where they happen, wrapped with `cause`, and turned into a reset, an HTTP
 * status or a metric label only at the edge.
 */
export const ErrorCodes = {
  WEFT_ERR_SYSCALL: 'a system call made through native/ failed (the message names the call and errno)',
  WEFT_ERR_MANIFEST_INVALID: 'a manifest document does not match the schema of its kind',
  WEFT_ERR_NETNS_NOT_FOUND: 'no network namespace on this node holds the pod IP',
  WEFT_ERR_NETNS_AMBIGUOUS: 'several network namespaces hold the pod IP (a deleted pod is still going away); capture waits',
  WEFT_ERR_CAPTURE_RULES: 'installing or removing the in-pod iptables rules failed',
  WEFT_ERR_NO_ENDPOINT: 'a service has no ready endpoint for the requested port',
  WEFT_ERR_WAYPOINT_UNAVAILABLE: 'a service bound to a waypoint was dialled, but the waypoint does not exist or has no ready pod; the connection is refused, never sent around the waypoint',
  WEFT_ERR_WAYPOINT_INVALID: 'a Gateway of class weft-waypoint is refused: a field does not validate (no HBONE listener on 15008, ...) or its pods run as more than one service account',
  WEFT_ERR_LAB: 'a lab operation failed (the message says which step)',
  WEFT_ERR_LAB_NOT_FOUND: 'the named lab, pod or namespace does not exist',
  WEFT_ERR_CONFIG: 'a command-line option or configuration value is invalid',
  WEFT_ERR_BENCH: 'a benchmark step failed (the message says which)',
  WEFT_ERR_IDENTITY_INVALID: 'a string is not a SPIFFE ID of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>',
  WEFT_ERR_IDENTITY_UNAVAILABLE: 'no valid certificate for a workload identity (the CA could not be reached and no unexpired cached certificate exists)',
  WEFT_ERR_CA_LOAD: 'the CA key or certificate files are missing, unreadable or do not match',
  WEFT_ERR_CA_BAD_REQUEST: 'a certificate signing request or the requested identity is malformed',
  WEFT_ERR_CA_UNAUTHENTICATED: 'the CA did not accept the caller\'s token',
  WEFT_ERR_CA_UNAUTHORIZED: 'the CA refused an identity: no pod with that namespace and service account runs on the caller\'s node',
  WEFT_ERR_CA_UNAVAILABLE: 'the CA could not be reached or answered with an unexpected response',
  WEFT_ERR_CA_BOOTSTRAP: 'on Kubernetes the CA could not read or create its key Secret or publish the trust-bundle ConfigMap (API server or RBAC)',
  WEFT_ERR_TRUST_BUNDLE: 'the trust bundle file (the projected weft-ca-root ConfigMap) is missing, empty or holds something other than CA certificates; the last good bundle stays',
  WEFT_ERR_CHECK_FAILED: 'one or more `weft check` pre-flight checks failed (each printed with its fix)',
  WEFT_ERR_KUBE_REQUEST: 'a request of the weft command to the Kubernetes API server failed (the message names the request and the status)',
  WEFT_ERR_TLS_HANDSHAKE: 'the TLS handshake failed (includes a peer chain that does not verify against the trust bundle)',
  WEFT_ERR_TLS_PEER_IDENTITY: 'the peer certificate has no single SPIFFE URI SAN, or not the identity that was expected',
  WEFT_ERR_TLS_PEER_UNTRUSTED: 'the peer certificate chain does not verify against the trust bundle (expired, other CA, missing)',
  WEFT_ERR_HBONE_CONNECT: 'opening the TCP connection for an HBONE tunnel failed',
  WEFT_ERR_HBONE_REFUSED: 'the HBONE server answered a CONNECT with a status other than 200',
  WEFT_ERR_HBONE_STREAM: 'an HBONE CONNECT stream was reset or closed before the 200 response',
  WEFT_ERR_HBONE_SESSION: 'the HTTP/2 session of an HBONE connection failed or was closed (GOAWAY, ping timeout, protocol error)',
  WEFT_ERR_HBONE_BAD_REQUEST: 'an HBONE request is not a CONNECT or its :authority is not ip:port',
  WEFT_ERR_POLICY_INVALID: 'an AuthorizationPolicy or PeerAuthentication does not validate (the message lists each field path and problem); it is refused and the previous version kept',
  WEFT_ERR_ROUTE_INVALID: 'an HTTPRoute or GRPCRoute does not validate or uses what Weft does not support (the message lists each field path and problem); it is refused and its last good version kept',
  WEFT_ERR_ROUTE_CONFLICT: 'a Gateway API route (HTTPRoute, GRPCRoute) and an Istio VirtualService both route one Service port: they are not merged, the Gateway API route routes it and the VirtualService is left out there (status Conflicted)',
  WEFT_ERR_POLICY_DENIED: 'a connection was refused by an AuthorizationPolicy (the message names the deciding policy or says no ALLOW policy matched)',
  WEFT_ERR_KUBE_API: 'the lab\'s Kubernetes API server (a test double) could not start: state file unreadable, a listen address taken or a network namespace missing',
  WEFT_ERR_POLICY_MTLS_REQUIRED: 'a plaintext connection was refused because PeerAuthentication makes the port STRICT',
  WEFT_ERR_OBJECT_TOO_LARGE: 'a Kubernetes object (a watch event, a list item, a manifest document) is over 1.5 MiB, the limit Kubernetes itself has; it is refused and the version before it stays',
  WEFT_ERR_MANIFEST_TOO_LARGE: 'a manifest file is over 8 MiB; it is refused from its size, without being read, and its last good content stays',
  WEFT_ERR_CNI_TIMEOUT: 'the CNI plugin waited its bounded time and no agent captured the new pod (no agent on the node, or capture failing): the pod sandbox is not created',
  WEFT_ERR_CNI_NO_AGENT: 'the CNI plugin found no running Weft agent on the node: the pod sandbox is not created (fail closed)',
  WEFT_ERR_CNI_REQUEST: 'a CNI request is malformed (missing CNI_NETNS, CNI_CONTAINERID, K8S_POD_NAMESPACE/K8S_POD_NAME or prevResult, or an unknown CNI_COMMAND)',
  WEFT_ERR_SELF_CALL: 'a connection was addressed to one of the agent\'s own in-pod ports (15001, 15006, 15008) or reached the outbound listener without the redirect; refused so the agent never proxies to itself',
  WEFT_ERR_CONNECT_TIMEOUT: 'an upstream TCP connect or an HBONE CONNECT response took longer than its deadline (agent/config.ts)',
  WEFT_ERR_PORTS_EXHAUSTED: 'no local port is left for an address (net.ipv4.ip_local_port_range used up): a bind to port 0 or a connect failed with EADDRINUSE/EADDRNOTAVAIL',
  WEFT_ERR_WAYPOINT_NOT_BOUND: 'an HBONE CONNECT reached a waypoint with an :authority that is not the VIP:port of a service bound to that waypoint (weft.dev/use-waypoint); refused, never proxied',
  WEFT_ERR_WAYPOINT_NO_ENDPOINT: 'the waypoint found no ready endpoint for the service a request is routed to (503, response flag UH)',
  WEFT_ERR_WAYPOINT_UPSTREAM: 'the waypoint could not reach the chosen endpoint of a request (HBONE connect, TLS, CONNECT refused: 503, response flag UF)',
  WEFT_ERR_WAYPOINT_TIMEOUT: 'a request through the waypoint exceeded its route timeout (request or backendRequest: 504, response flag UT)',
  WEFT_ERR_WAYPOINT_OVERFLOW: 'a DestinationRule connectionPool limit of the backend was reached (http2MaxRequests, maxConnections with http1MaxPendingRequests waiting): 503 at once, response flag UO',
  WEFT_ERR_WAYPOINT_RATE_LIMITED: 'a request found no token in its route rule\'s local rate-limit bucket (LocalRateLimitPolicy): 429 local_rate_limited, response flag RL',
  WEFT_ERR_WAYPOINT_FAULT_INJECTED: 'a request was aborted by its route\'s fault injection (VirtualService fault, HTTPFault): the configured status, response flag FI',
  WEFT_ERR_WAYPOINT_RETRIES_EXHAUSTED: 'a request failed on its last allowed attempt (route retries used up): the last answer or failure goes back, response flag URX',
  WEFT_ERR_WAYPOINT_ENDPOINT_EJECTED: 'outlier detection ejected an endpoint of a backend after consecutive 5xx or gateway errors (logged; the picker skips it for baseEjectionTime x ejections)',
  WEFT_ERR_DASHBOARD: 'the dashboard could not get its data: Prometheus unreachable or refusing a query, or the listen address taken (the message names which)',
  WEFT_ERR_PORT_FORWARD: '`weft lab port-forward` cannot forward: unknown pod or service, a service without a ready endpoint, a port it does not expose, or the local port taken',
  WEFT_ERR_GATEWAY_INVALID: 'weft gateway found no Gateway of class weft with its --name/--namespace; it serves no listener until one appears',
  WEFT_ERR_GATEWAY_LISTENER: 'a listener of an ingress Gateway is not served: a certificateRef Secret missing, not kubernetes.io/tls or not loading, an unsupported protocol, a conflict, or its port cannot be opened; the other listeners keep serving',
  WEFT_ERR_GATEWAY_STATUS: 'weft gateway could not write a status (Gateway, HTTPRoute parent, Ingress loadBalancer) to the API server; it writes again after a backoff',
  WEFT_ERR_GATEWAY_INGRESS: 'a part of an Ingress of class weft or of an Istio Gateway is not served (a bad path, a Resource backend, a named port, a bad Secret, an unsupported server protocol or tls mode); the rest is',
  WEFT_ERR_GATEWAY_ROUTE_NOT_ATTACHED: 'an HTTPRoute with a parentRef to an ingress Gateway is not attached: no such listener, allowedRoutes refuses its namespace, or no hostname intersects',
  WEFT_ERR_KIND_UNAVAILABLE: 'Kubernetes mode: an optional kind (Gateway API, Istio) is not watched: not served (CRD not installed) or forbidden (403); the agent is ready without it and picks it up when it comes',
  WEFT_ERR_ROUTE_STATUS: 'Kubernetes mode: writing a route status (HTTPRoute/GRPCRoute status.parents) to the API server failed; retried with backoff, the data path is not affected',
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

/**
 * The agent's timeouts and limits in one place (issue 10, "Bounds and hostile input"). Modules
 * take these as defaults and let tests pass smaller values through their options.
 */

/** TCP connect of an upstream socket (to an app, a plaintext destination or a peer's 15008). */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;
/** From sending an HBONE CONNECT to its response. */
export const CONNECT_RESPONSE_TIMEOUT_MS = 10_000;
/**
 * An HBONE server session without open streams is closed after this long. Longer than the
 * client pool's idle close (10 s), so that normally the client closes first; it also bounds a
 * session nghttp2 has stopped reading after a protocol error (Node tells nobody: F3).
 */
export const HBONE_SERVER_IDLE_TIMEOUT_MS = 60_000;
/** After a graceful close (GOAWAY), a session still open this long is destroyed. */
export const SESSION_CLOSE_GRACE_MS = 5_000;
/** Per-pair connection totals kept for the admin API; the oldest pair goes beyond this. */
export const MAX_PAIR_TOTALS = 10_000;
/** Identity renewal retry: first delay and cap (recovery after a CA outage within seconds). */
export const IDENTITY_RETRY_INITIAL_MS = 250;
export const IDENTITY_RETRY_MAX_MS = 5_000;
/** An outbound meshed connection of a pod without its certificate waits this long, then is refused. */
export const CERT_WAIT_MS = 5_000;
/**
 * SIGTERM: how long a stopping agent relays its open connections (`--drain-timeout`). The
 * DaemonSet's terminationGracePeriodSeconds (30) leaves 5 s above it.
 */
export const DEFAULT_DRAIN_SECONDS = 25;
/** How long the CNI plugin waits for the agent to capture a new pod (weft-cni has the same default). */
export const CNI_TIMEOUT_SECONDS = 10;

/**
 * Every default of the agent, the CA and the CLI in one place: ports and addresses, marks, the
 * trust domain, HBONE settings, timeouts and limits (issue 10, "Bounds and hostile input"),
 * identity lifetimes, discovery limits. Modules take these as defaults and let tests (and flags)
 * pass other values through their options; nothing else in the code base spells these numbers.
 * `effectiveConfig()` is what the admin API's `/config_dump` shows as `config`.
 */

// --- Ports inside every captured pod (agent listeners opened in the pod's namespace) ---------

/** nat OUTPUT redirects an app's outbound TCP here. */
export const OUTBOUND_PORT = 15001;
/** nat PREROUTING redirects inbound plaintext TCP here. */
export const INBOUND_PLAINTEXT_PORT = 15006;
/** Inbound HBONE (mutual TLS); never redirected. Also the port every peer dials. */
export const HBONE_PORT = 15008;
/** The ports the agent listens on inside every captured pod: never a destination it proxies to. */
export const POD_AGENT_PORTS: ReadonlySet<number> = new Set([OUTBOUND_PORT, INBOUND_PLAINTEXT_PORT, HBONE_PORT]);

// --- Node-level ports (the agent's own namespace) ----------------------------------------------

/** The agent's node-level ports (admin, metrics, readiness), in the node's namespace. */
export const ADMIN_PORT = 15000;
export const METRICS_PORT = 15020;
export const READINESS_PORT = 15021;
/** Their default listen addresses: the admin API on the node's loopback only, the others for scrapers and probes. */
export const DEFAULT_ADMIN_ADDRESS = `127.0.0.1:${ADMIN_PORT}`;
export const DEFAULT_METRICS_ADDRESS = `0.0.0.0:${METRICS_PORT}`;
export const DEFAULT_READINESS_ADDRESS = `0.0.0.0:${READINESS_PORT}`;
/** The CA's port (`weft ca --listen`, the lab's CA). */
export const CA_PORT = 15012;
export const DEFAULT_CA_ADDRESS = `127.0.0.1:${CA_PORT}`;

// --- Marks and routing of the capture rules ---------------------------------------------------

/** SO_MARK on every socket the agent opens inside a pod: the rules let these through. */
export const MESH_MARK = 0x539;
/** Connection mark for connections the agent opened to the app with a spoofed source. */
export const REPLY_CONNMARK = 0x111;
export const MARK_MASK = 0xfff;
/** Kubelet probes arrive SNATed to this address on the host; they are never captured. */
export const PROBE_SNAT_IP = '169.254.7.127';
/** The policy route that brings the app's replies back to the agent's transparent sockets. */
export const REPLY_ROUTE_TABLE = 100;
export const REPLY_RULE_PREF = 32764;

// --- Identity -----------------------------------------------------------------------------------

/** SPIFFE trust domain (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`); `--trust-domain` of `weft agent` and `weft ca`. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
/** The cluster's DNS domain (`<svc>.<ns>.svc.<domain>`): a different thing that has the same default. */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
/** Workload certificate lifetime the CA issues. */
export const DEFAULT_WORKLOAD_LIFETIME_MS = 24 * 3600_000;
/** The CA's self-made root lives this long; its serving certificate this long (renewed at half-life). */
export const CA_ROOT_LIFETIME_MS = 10 * 365 * 24 * 3600_000;
export const CA_SERVING_LIFETIME_MS = 7 * 24 * 3600_000;
/** Certificates start this far in the past so that a peer whose clock lags accepts them. */
export const CERT_BACKDATE_MS = 60_000;
/** In Kubernetes mode the CA re-reads its key Secret this often and puts the root ConfigMap right. */
export const CA_REPUBLISH_MS = 30_000;
/** The CA caches TokenReview answers this long, for at most this many tokens. */
export const TOKEN_REVIEW_CACHE_MS = 60_000;
export const TOKEN_REVIEW_CACHE_MAX = 10_000;
/** An agent's request to the CA (sign, bundle) without an answer this long fails. */
export const CA_REQUEST_TIMEOUT_MS = 10_000;
/** Fraction of a certificate's lifetime after which the agent renews it, and the random spread around it. */
export const RENEW_AT_FRACTION = 0.5;
export const RENEW_JITTER_FRACTION = 0.1;
/** Most workload identities the agent caches (the wanted ones are never evicted). */
export const MAX_IDENTITIES = 10_000;
/** Identity renewal retry: first delay and cap (recovery after a CA outage within seconds). */
export const IDENTITY_RETRY_INITIAL_MS = 250;
export const IDENTITY_RETRY_MAX_MS = 5_000;
/** An outbound meshed connection of a pod without its certificate waits this long, then is refused. */
export const CERT_WAIT_MS = 5_000;
/** A captured pod still without a certificate is logged again this often (its 15008 listens once it has one). */
export const CERT_PENDING_LOG_INTERVAL_MS = 60_000;
/** The published trust bundle file is re-read this often besides its directory watch. */
export const TRUST_BUNDLE_POLL_MS = 10_000;

// --- HBONE (values as ztunnel uses them) -------------------------------------------------------

/**
 * HBONE's HTTP/2 when neither --hbone-impl nor WEFT_HBONE_IMPL says: Weft's own framer
 * (agent/tunnel/h2/). node:http2 stays selectable; docs/architecture.md "Tunnel" says why lean.
 */
export const DEFAULT_HBONE_IMPL = 'lean';
export const MAX_STREAMS_PER_CONNECTION = 100;
export const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
export const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;
export const MAX_FRAME_BYTES = 1024 * 1024;
export const MAX_HEADER_LIST_BYTES = 16 * 1024;
/**
 * nghttp2's memory cap per session, in MB. The default (10) is below what 100 streams with
 * 4 MiB windows may legitimately hold in flight.
 */
export const MAX_SESSION_MEMORY_MB = 64;
/** TLS handshake of an HBONE connection, either side. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** A pooled HBONE connection without streams is closed after this long (pod IPs get reused). */
export const POOL_IDLE_TIMEOUT_MS = 10_000;
/** HTTP/2 PING interval on pooled connections, and the TCP keepalive delay of HBONE sockets. */
export const HBONE_KEEPALIVE_MS = 30_000;

// --- Timeouts and limits (issue 10) ------------------------------------------------------------

/** TCP connect of an upstream socket (to an app, a plaintext destination or a peer's 15008). */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;
/** From sending an HBONE CONNECT to its response. */
export const CONNECT_RESPONSE_TIMEOUT_MS = 10_000;
/**
 * An HBONE server session without open streams is closed after this long. Longer than the
 * client pool's idle close (POOL_IDLE_TIMEOUT_MS), so that normally the client closes first; it
 * also bounds a session nghttp2 has stopped reading after a protocol error (Node tells nobody: F3).
 */
export const HBONE_SERVER_IDLE_TIMEOUT_MS = 60_000;
/** After a graceful close (GOAWAY), a session still open this long is destroyed. */
export const SESSION_CLOSE_GRACE_MS = 5_000;
/** Per-pair connection totals kept for the admin API; the oldest pair goes beyond this. */
export const MAX_PAIR_TOTALS = 10_000;
/**
 * SIGTERM: how long a stopping agent relays its open connections (`--drain-timeout`). The
 * DaemonSet's terminationGracePeriodSeconds (30) leaves 5 s above it.
 */
export const DEFAULT_DRAIN_SECONDS = 25;
/** How long the CNI plugin waits for the agent to capture a new pod (weft-cni has the same default). */
export const CNI_TIMEOUT_SECONDS = 10;

// --- Discovery ------------------------------------------------------------------------------------

/** One object (one YAML document, one watch event): Kubernetes' own limit (etcd's request size). */
export const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;
/**
 * One manifest file, which may hold several objects: about as much as `kubectl apply -f` of one
 * file sends in a few requests. A bigger file is refused from its size alone, without a read.
 */
export const MAX_MANIFEST_FILE_BYTES = 8 * 1024 * 1024;
/** Reconnect backoff of the Kubernetes watches: first delay and cap. */
export const DISCOVERY_BACKOFF_INITIAL_MS = 800;
export const DISCOVERY_BACKOFF_MAX_MS = 30_000;
/** A watch outlives this without a byte (bookmarks come every minute or so): it is dead. */
export const WATCH_IDLE_GRACE_MS = 30_000;
/** A pod whose capture keeps failing this long makes the agent not ready (readiness names it). */
export const CAPTURE_READY_GRACE_MS = 5000;
/** Kubernetes mode: how often an API server without the Gateway API is asked again (its CRDs may be installed later). */
export const GATEWAY_API_RECHECK_MS = 60_000;
/** Local manifests: changes are applied this long after the last event, at most this late, and the directory is rescanned this often. */
export const MANIFEST_DEBOUNCE_MS = 100;
export const MANIFEST_MAX_WAIT_MS = 1000;
export const MANIFEST_RESCAN_MS = 5000;

/** What a running agent was configured with (flags over the defaults above), for `/config_dump`. */
export interface EffectiveConfigInput {
  readonly trustDomain: string;
  readonly adminAddress?: string | undefined;
  readonly metricsAddress?: string | undefined;
  readonly readinessAddress?: string | undefined;
  readonly nodeIp?: string | undefined;
  readonly runDir?: string | undefined;
  readonly podNetnsPrefix?: string | undefined;
  readonly mtls: boolean;
}

/** The agent's effective configuration: its flags and every default it runs with. */
export function effectiveConfig(input: EffectiveConfigInput) {
  return {
    trustDomain: input.trustDomain,
    mtls: input.mtls,
    nodeIp: input.nodeIp,
    runDir: input.runDir,
    podNetnsPrefix: input.podNetnsPrefix,
    addresses: { admin: input.adminAddress ?? '', metrics: input.metricsAddress ?? '', readiness: input.readinessAddress ?? '' },
    podPorts: { outbound: OUTBOUND_PORT, inboundPlaintext: INBOUND_PLAINTEXT_PORT, hbone: HBONE_PORT },
    marks: { mesh: hex(MESH_MARK), replyConnmark: hex(REPLY_CONNMARK), mask: hex(MARK_MASK), replyRouteTable: REPLY_ROUTE_TABLE, replyRulePref: REPLY_RULE_PREF, probeSnatIp: PROBE_SNAT_IP },
    hbone: {
      maxStreamsPerConnection: MAX_STREAMS_PER_CONNECTION,
      streamWindowBytes: STREAM_WINDOW_BYTES,
      connectionWindowBytes: CONNECTION_WINDOW_BYTES,
      maxFrameBytes: MAX_FRAME_BYTES,
      maxHeaderListBytes: MAX_HEADER_LIST_BYTES,
      maxSessionMemoryMb: MAX_SESSION_MEMORY_MB,
      tlsHandshakeTimeoutMs: TLS_HANDSHAKE_TIMEOUT_MS,
      poolIdleTimeoutMs: POOL_IDLE_TIMEOUT_MS,
      keepaliveMs: HBONE_KEEPALIVE_MS,
      serverIdleTimeoutMs: HBONE_SERVER_IDLE_TIMEOUT_MS,
      sessionCloseGraceMs: SESSION_CLOSE_GRACE_MS,
    },
    timeouts: { upstreamConnectMs: UPSTREAM_CONNECT_TIMEOUT_MS, connectResponseMs: CONNECT_RESPONSE_TIMEOUT_MS, certWaitMs: CERT_WAIT_MS, cniSeconds: CNI_TIMEOUT_SECONDS },
    identity: { certPendingLogIntervalMs: CERT_PENDING_LOG_INTERVAL_MS, workloadLifetimeMs: DEFAULT_WORKLOAD_LIFETIME_MS, caRequestTimeoutMs: CA_REQUEST_TIMEOUT_MS, renewAt: RENEW_AT_FRACTION, renewJitter: RENEW_JITTER_FRACTION, maxIdentities: MAX_IDENTITIES, retryInitialMs: IDENTITY_RETRY_INITIAL_MS, retryMaxMs: IDENTITY_RETRY_MAX_MS, trustBundlePollMs: TRUST_BUNDLE_POLL_MS },
    limits: { maxPairTotals: MAX_PAIR_TOTALS, maxObjectBytes: MAX_OBJECT_BYTES, maxManifestFileBytes: MAX_MANIFEST_FILE_BYTES },
    discovery: { backoffInitialMs: DISCOVERY_BACKOFF_INITIAL_MS, backoffMaxMs: DISCOVERY_BACKOFF_MAX_MS, watchIdleGraceMs: WATCH_IDLE_GRACE_MS, gatewayApiRecheckMs: GATEWAY_API_RECHECK_MS, manifestDebounceMs: MANIFEST_DEBOUNCE_MS, manifestMaxWaitMs: MANIFEST_MAX_WAIT_MS, manifestRescanMs: MANIFEST_RESCAN_MS },
  };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

// --- Waypoint (`weft waypoint`, issue 11) ------------------------------------------------------

/** Where the waypoint serves HBONE (its pod's 15008). */
export const DEFAULT_WAYPOINT_HBONE_ADDRESS = `0.0.0.0:${HBONE_PORT}`;
/**
 * A tunnelled stream whose first bytes are neither an HTTP/2 preface nor an HTTP/1 request line
 * within this long is relayed as L4 (server-first protocols send nothing until the server speaks).
 */
export const WAYPOINT_SNIFF_TIMEOUT_MS = 1_000;
/** The longest HTTP/1 request line the sniffer waits for before deciding the stream is not HTTP. */
export const WAYPOINT_SNIFF_MAX_BYTES = 8 * 1024;
/** Idle keep-alive HTTP/1.1 upstream connections per destination pod kept open. */
export const WAYPOINT_UPSTREAM_MAX_FREE_SOCKETS = 64;
/** Bytes a mirror may lag behind the real request before the mirror is given up (no buffering). */
export const WAYPOINT_MIRROR_MAX_BUFFER_BYTES = 1024 * 1024;
/** Headers of an HTTP/1 request on a tunnelled stream must arrive within this long. */
export const WAYPOINT_HEADERS_TIMEOUT_MS = 60_000;
/**
 * Retries (issue 12): a request body is kept for a retry up to this size; a request whose body
 * streams past it is never retried (Envoy's per-connection buffer limit, 1 MiB by default).
 */
export const WAYPOINT_RETRY_BUFFER_BYTES = 1024 * 1024;
/** Envoy's retry budget: retries in flight at most this percent of the backend's active and pending requests ... */
export const RETRY_BUDGET_PERCENT = 20;
/** ... but this many concurrent retries are always allowed (Envoy's min_retry_concurrency). */
export const RETRY_BUDGET_MIN_CONCURRENT = 3;

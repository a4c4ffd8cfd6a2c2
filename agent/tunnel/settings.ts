/** HBONE constants shared by client and server (values as ztunnel uses them). */
import type { Settings } from 'node:http2';
import type { SecureContext } from 'node:tls';

export const ALPN_H2 = 'h2';

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

export const H2_SETTINGS: Settings = {
  maxConcurrentStreams: MAX_STREAMS_PER_CONNECTION,
  initialWindowSize: STREAM_WINDOW_BYTES,
  maxFrameSize: MAX_FRAME_BYTES,
  maxHeaderListSize: MAX_HEADER_LIST_BYTES,
  enablePush: false,
};

/**
 * A workload's TLS material. `WorkloadCertificate` (agent/identity/manager.ts) has this shape,
 * so the identity manager's certificates are passed as they are.
 */
export interface TlsCredentials {
  identity: string;
  keyPem: string;
  certPem: string;
  chainPem: string[];
  trustBundle: string[];
  /** Prebuilt context with all of the above (client side uses it when present). */
  secureContext?: SecureContext;
}

/** TLS options both sides use: TLS 1.3 only (no downgrade to anything older). */
export const TLS_VERSIONS = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

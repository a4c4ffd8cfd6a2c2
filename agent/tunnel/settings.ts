/** HBONE settings shared by client and server, built from the numbers in agent/config.ts. */
import type { Settings } from 'node:http2';
import type { SecureContext } from 'node:tls';
import { MAX_FRAME_BYTES, MAX_HEADER_LIST_BYTES, MAX_STREAMS_PER_CONNECTION, STREAM_WINDOW_BYTES } from '../config.js';

export const ALPN_H2 = 'h2';

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

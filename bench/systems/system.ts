/**
 * A system under test: started fresh for each scenario, stopped after it. It says where the
 * client pod connects for each service and which processes are "the proxy" whose CPU and memory
 * are measured (both sides).
 */
import type { Target } from '../loadgen.js';
import type { BenchLab } from '../lab-env.js';

/**
 * The columns of the report. `haproxy-mtls` is the peer of the mesh scenarios (in l7: HAProxy
 * in HTTP mode between its two mutual-TLS hops); `reverse-proxy` the ingress scenario's peer, a
 * TLS-terminating reverse proxy (HAProxy, or nginx where /usr/sbin/nginx exists).
 */
export const SYSTEM_NAMES = ['direct', 'weft', 'haproxy-mtls', 'reverse-proxy'] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];

/** The systems weft is compared with, in the order a figure's peer is looked for. */
export const PEER_NAMES = ['haproxy-mtls', 'reverse-proxy'] as const;

/** The services of the server pod, by their pod port (http: HTTP/1.1, h2: gRPC-like h2c). */
export type Service = 'rr' | 'sink' | 'iperf' | 'http' | 'h2';

export interface System {
  readonly name: SystemName;
  start(lab: BenchLab): Promise<void>;
  stop(): Promise<void>;
  /** Where the client pod connects for `service`. */
  target(service: Service): Target;
  /** The proxy processes (both sides); empty for direct. Valid between start and stop. */
  proxyPids(): number[];
}

/**
 * A system under test: started fresh for each scenario, stopped after it. It says where the
 * client pod connects for each service and which processes are "the proxy" whose CPU and memory
 * are measured (both sides).
 */
import type { Target } from '../loadgen.js';
import type { BenchLab } from '../lab-env.js';

export const SYSTEM_NAMES = ['direct', 'weft', 'haproxy-mtls'] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];

/** The services of the server pod, by their pod port. */
export type Service = 'rr' | 'sink' | 'iperf';

export interface System {
  readonly name: SystemName;
  start(lab: BenchLab): Promise<void>;
  stop(): Promise<void>;
  /** Where the client pod connects for `service`. */
  target(service: Service): Target;
  /** The proxy processes (both sides); empty for direct. Valid between start and stop. */
  proxyPids(): number[];
}

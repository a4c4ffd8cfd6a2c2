/**
 * What every step of the data path shares, passed in one bundle (never reached for globally),
 * so tests can hand in fakes.
 */
import type { Logger } from '../log.js';
import type { MeshModel, Workload } from '../discovery/types.js';
import type { LoadBalancer } from './load-balancer.js';
import type { ConnectionTracker } from './connection.js';
import type { PolicyState } from './authorization.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import type { IdentityManager } from '../identity/manager.js';
import type { HbonePool } from '../tunnel/pool.js';

export interface ProxyInputs {
  readonly nodeName: string;
  /** The mesh's SPIFFE trust domain (`--trust-domain`): peers of another one are refused. */
  readonly trustDomain: string;
  readonly logger: Logger;
  /** One JSON line per connection at close. */
  readonly accessLog: Logger;
  /** The current discovery model (swapped on every update). */
  model(): MeshModel;
  readonly loadBalancer: LoadBalancer;
  readonly connections: ConnectionTracker;
  readonly policy: PolicyState;
  readonly metrics: AgentMetrics;
  /** Certificates of the node's workload identities; undefined runs the mesh without mTLS (tests only). */
  readonly identity: IdentityManager | undefined;
}

/** A pod whose traffic this agent captures: its workload and a handle on its namespace. */
export interface CapturedPod {
  readonly workload: Workload;
  /** Open handle on the pod's network namespace (for setns). */
  readonly netnsFd: number;
  /** A path that opens the same namespace (for nsenter). */
  readonly netnsPath: string;
  /** HBONE connections from this pod (sockets made in its namespace, so the wire carries its IP). */
  readonly pool: HbonePool | undefined;
  /** W3C baggage describing this workload, sent on every CONNECT (built once per pod). */
  readonly baggage: string;
}

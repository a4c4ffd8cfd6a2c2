/**
 * The network outside the lab's cluster, and the external addresses that reach into it (what a
 * cloud's load balancer does for a Service of type LoadBalancer, the way an ingress Gateway's
 * Service is exposed):
 *   internet netns  `weft-<lab>-internet`, one client host: eth0 198.19.64.2/24, default via
 *                   198.19.64.1 (the fabric's end of the link, the lab's edge router)
 *   fabric          `inet0` 198.19.64.1/24, ip_forward; nat PREROUTING DNATs each external
 *                   address:port to the ready endpoints of its Service (the pod IP and target
 *                   port, as a load balancer in IP mode), spread evenly; the filter table lets
 *                   from the internet only what was DNATed (no pod IP, ClusterIP, API server or
 *                   CA is reachable from outside)
 *   nodes           a route to 198.19.64.0/24 via the fabric: replies go back the way they came,
 *                   so the gateway sees the client's own address (externalTrafficPolicy Local)
 * Both lab modes use it: converge (local) and the Kubernetes mode's external address controller
 * (external-controller.ts) call installExternalRules with their own view of the endpoints.
 */
import { LAB_CA_IP } from './ca.js';
import { EXTERNAL_CIDR, INTERNET_CIDR, INTERNET_CLIENT_IP, INTERNET_ROUTER_IP } from './addressing.js';
import { addNetns, listNetns } from './network.js';
import { internetNetns } from './paths.js';
import { inNetns, ipBatch } from './run.js';
import type { LabState, NodeState } from './state.js';

/** The fabric's end of the internet link. */
const UPLINK = 'inet0';
export const CHAIN_EXTERNAL = 'WEFT-LAB-EXTERNAL';
const CHAIN_FROM_INTERNET = 'WEFT-LAB-FROM-INTERNET';
const CHAIN_TO_FABRIC = 'WEFT-LAB-INTERNET-INPUT';

/** One external address:port and where it goes. */
export interface ExternalFrontend {
  /** `<namespace>/<service>` */
  service: string;
  ip: string;
  port: number;
  /** The ready endpoints of the Service's port (pod IP, target port). */
  endpoints: { ip: string; port: number }[];
}

export interface InternetStatus {
  netns: string;
  /** The client host's address. */
  clientIP: string;
  /** Where the external addresses come from. */
  externalCIDR: string;
}

export function internetStatus(lab: string): InternetStatus {
  return { netns: internetNetns(lab), clientIP: INTERNET_CLIENT_IP, externalCIDR: EXTERNAL_CIDR };
}

/**
 * Creates the internet namespace and its link to the fabric when missing, and gives every node
 * of the state its route back (`route replace`: running it again changes nothing). `freshNodes`:
 * only those need the route when the internet already existed.
 */
export async function ensureInternet(state: LabState, freshNodes: readonly NodeState[] = state.nodes): Promise<void> {
  const netns = internetNetns(state.name);
  const exists = (await listNetns()).includes(netns);
  if (!exists) {
    await addNetns([netns]);
    await ipBatch(undefined, [`link add eth0 netns ${netns} type veth peer name ${UPLINK} netns ${state.fabricNetns}`], 'create the internet link');
    await Promise.all([
      ipBatch(netns, ['link set lo up', `addr add ${INTERNET_CLIENT_IP}/24 dev eth0`, 'link set eth0 up', `route add default via ${INTERNET_ROUTER_IP} dev eth0`], 'configure the internet client'),
      ipBatch(state.fabricNetns, [`addr add ${INTERNET_ROUTER_IP}/24 dev ${UPLINK}`, `link set ${UPLINK} up`], 'configure the fabric end of the internet link'),
    ]);
    await inNetns(state.fabricNetns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { step: 'enable forwarding in the fabric' });
    await inNetns(state.fabricNetns, 'iptables-restore', ['--noflush'], { input: edgeRules(), step: 'install the internet edge rules in the fabric' });
  }
  const nodes = exists ? freshNodes : state.nodes;
  await Promise.all(nodes.map((n) => ipBatch(n.netns, [`route replace ${INTERNET_CIDR} via ${LAB_CA_IP} dev eth0`], `route the internet from node ${n.name}`)));
}

/** What comes in from the internet: only connections the external chain DNATed (and their replies). */
export function edgeRules(): string {
  return [
    '*nat',
    `:${CHAIN_EXTERNAL} - [0:0]`,
    `-A PREROUTING -i ${UPLINK} -j ${CHAIN_EXTERNAL}`,
    'COMMIT',
    '*filter',
    `:${CHAIN_FROM_INTERNET} - [0:0]`,
    `:${CHAIN_TO_FABRIC} - [0:0]`,
    `-A FORWARD -i ${UPLINK} -j ${CHAIN_FROM_INTERNET}`,
    `-A ${CHAIN_FROM_INTERNET} -m conntrack --ctstate DNAT -j ACCEPT`,
    `-A ${CHAIN_FROM_INTERNET} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
    `-A ${CHAIN_FROM_INTERNET} -p tcp -j REJECT --reject-with tcp-reset`,
    `-A ${CHAIN_FROM_INTERNET} -j REJECT`,
    // The fabric is the control plane host (CA, API server, Prometheus): never reachable from outside.
    `-A INPUT -i ${UPLINK} -j ${CHAIN_TO_FABRIC}`,
    `-A ${CHAIN_TO_FABRIC} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
    `-A ${CHAIN_TO_FABRIC} -p icmp -j ACCEPT`,
    `-A ${CHAIN_TO_FABRIC} -p tcp -j REJECT --reject-with tcp-reset`,
    `-A ${CHAIN_TO_FABRIC} -j REJECT`,
    'COMMIT',
    '',
  ].join('\n');
}

/**
 * iptables-restore input (`--noflush`) that replaces the external chain: each frontend's
 * connections spread evenly over its endpoints (rule i of n takes 1/(n-i) of what reaches it).
 * A frontend without endpoints is refused (a reset, as a load balancer without healthy targets
 * refuses), never sent anywhere else. Pure.
 */
export function externalRules(frontends: readonly ExternalFrontend[]): string {
  const nat: string[] = [];
  const sorted = [...frontends].sort((a, b) => a.ip.localeCompare(b.ip) || a.port - b.port);
  for (const f of sorted) {
    const match = `-d ${f.ip}/32 -p tcp -m tcp --dport ${f.port} -m comment --comment "${f.service}:${f.port}"`;
    const n = f.endpoints.length;
    f.endpoints.forEach((ep, i) => {
      const pick = i < n - 1 ? ` -m statistic --mode random --probability ${(1 / (n - i)).toFixed(10)}` : '';
      nat.push(`-A ${CHAIN_EXTERNAL} ${match}${pick} -j DNAT --to-destination ${ep.ip}:${ep.port}`);
    });
  }
  // Declaring the chain flushes it: the rules below are the whole of it.
  return ['*nat', `:${CHAIN_EXTERNAL} - [0:0]`, ...nat, 'COMMIT', ''].join('\n');
}

/** Installs the frontends in the fabric (the caller runs in the host's or the fabric's namespace). */
export async function installExternalRules(fabricNetns: string, frontends: readonly ExternalFrontend[]): Promise<void> {
  await inNetns(fabricNetns, 'iptables-restore', ['--noflush'], { input: externalRules(frontends), step: 'install the external addresses in the fabric' });
}

/**
 * The lab's address plan (all of it inside 198.18.0.0/15, the benchmarking range, so lab traffic
 * can never leave for a real network):
 *   node i (1-based)     fabric IP 198.19.0.i/24, pod CIDR 198.18.i.0/24
 *   pod n on node i      198.18.i.n/32 (n >= 2)
 *   service ClusterIPs   198.19.128.0/17 (from the manifest or allocated)
 *   the "internet"       198.19.64.0/24: the link between the fabric (198.19.64.1, the lab's edge
 *                        router) and the internet namespace's client host (198.19.64.2)
 *   external addresses   198.19.65.0/24: one per Service of type LoadBalancer (an ingress
 *                        Gateway's), reachable from the internet only, DNATed by the fabric
 * Pure functions: allocation state is passed in and returned.
 */

export const LAB_RANGE = '198.18.0.0/15';
export const SERVICE_CIDR = '198.19.128.0/17';
export const FABRIC_CIDR = '198.19.0.0/24';
/** The internet link: outside the cluster, routed by the fabric like a cloud's edge. */
export const INTERNET_CIDR = '198.19.64.0/24';
export const INTERNET_ROUTER_IP = '198.19.64.1';
export const INTERNET_CLIENT_IP = '198.19.64.2';
/** LoadBalancer addresses (status.loadBalancer.ingress, a Gateway's status.addresses). */
export const EXTERNAL_CIDR = '198.19.65.0/24';
/** The pods' default gateway (Calico's trick): answered by proxy ARP on the node's veth. */
export const POD_GATEWAY = '169.254.1.1';

export const MAX_NODES = 254;
const FIRST_POD_HOST = 2;
const LAST_POD_HOST = 254;

export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) return NaN;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return NaN;
    const v = Number(p);
    if (v > 255) return NaN;
    n = n * 256 + v;
  }
  return n;
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/') as [string, string];
  const bits = Number(bitsText);
  const value = ipToInt(ip);
  if (Number.isNaN(value)) return false;
  const size = 2 ** (32 - bits);
  const start = ipToInt(base);
  return value >= start && value < start + size;
}

export function fabricIp(nodeIndex: number): string {
  return `198.19.0.${nodeIndex}`;
}

export function podCidr(nodeIndex: number): string {
  return `198.18.${nodeIndex}.0/24`;
}

export function podIp(nodeIndex: number, host: number): string {
  return `198.18.${nodeIndex}.${host}`;
}

/** Lowest free node index: node indexes are stable for the life of a lab (kept in state.json). */
export function allocateNodeIndex(used: ReadonlySet<number>): number | undefined {
  for (let i = 1; i <= MAX_NODES; i++) if (!used.has(i)) return i;
  return undefined;
}

/**
 * Next free host number after `last`, wrapping around: an address that was just released is
 * reused last, so a stale ARP entry or pooled connection to it finds nobody rather than the
 * wrong pod.
 */
export function allocatePodHost(used: ReadonlySet<number>, last: number): number | undefined {
  const span = LAST_POD_HOST - FIRST_POD_HOST + 1;
  for (let k = 1; k <= span; k++) {
    const host = FIRST_POD_HOST + ((last - FIRST_POD_HOST + k) % span + span) % span;
    if (!used.has(host)) return host;
  }
  return undefined;
}

/** Why a ClusterIP from a manifest cannot be used, or undefined when it can. */
export function clusterIpProblem(ip: string): string | undefined {
  if (Number.isNaN(ipToInt(ip))) return `spec.clusterIP: ${ip} is not an IPv4 address`;
  if (!inCidr(ip, SERVICE_CIDR)) return `spec.clusterIP: ${ip} is outside the lab's service range ${SERVICE_CIDR}`;
  const last = ipToInt(ip) & 0x7fff;
  if (last === 0 || last === 0x7fff) return `spec.clusterIP: ${ip} is the network or broadcast address of ${SERVICE_CIDR}`;
  return undefined;
}

/** Lowest free address of the service range (198.19.128.1 and up). */
export function allocateClusterIp(used: ReadonlySet<string>): string | undefined {
  const start = ipToInt('198.19.128.1');
  const end = ipToInt('198.19.255.254');
  for (let n = start; n <= end; n++) {
    const ip = intToIp(n);
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

/** Lowest free external (LoadBalancer) address, 198.19.65.1 .. .254. */
export function allocateExternalIp(used: ReadonlySet<string>): string | undefined {
  for (let host = 1; host <= 254; host++) {
    const ip = `198.19.65.${host}`;
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

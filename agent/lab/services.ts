/**
 * What the lab does in place of kube-proxy and cluster DNS, as pure text:
 * - the iptables-restore input that DNATs ClusterIP:port to the ready endpoints in a node
 *   namespace (one chain per service port, one per endpoint, `statistic` spreading connections
 *   evenly; hairpin connections masqueraded as kube-proxy does);
 * - the hosts file each pod reads service names from.
 */
import { DEFAULT_CLUSTER_DOMAIN } from '../config.js';
import { createHash } from 'node:crypto';
import type { ServicePort } from '../discovery/types.js';

export const CHAIN_SERVICES = 'WEFT-LAB-SERVICES';
export const CHAIN_POSTROUTING = 'WEFT-LAB-POSTROUTING';
const SVC_PREFIX = 'WEFT-LAB-SVC-';
const SEP_PREFIX = 'WEFT-LAB-SEP-';
/** Outside the mesh's 0xfff mark bits; marks never cross a namespace anyway. */
const MASQ_MARK = '0x4000/0x4000';

export interface EndpointView {
  pod: string;
  ip: string;
  targetPort: number;
}

export interface ServicePortView {
  name: string | undefined;
  port: number;
  protocol: string;
  targetPort: number | string;
  endpoints: EndpointView[];
}

export interface ServiceView {
  key: string;
  name: string;
  namespace: string;
  clusterIP: string | undefined;
  ports: ServicePortView[];
}

export interface EndpointCandidate {
  name: string;
  namespace: string;
  ip: string;
  labels: Record<string, string>;
  namedPorts: ReadonlyMap<string, number>;
}

/** Resolves a service port against the candidate pods (already filtered by selector and readiness). */
export function portView(port: ServicePort, pods: readonly EndpointCandidate[]): ServicePortView {
  const target = port.targetPort ?? port.port;
  const endpoints: EndpointView[] = [];
  for (const pod of pods) {
    const targetPort = typeof target === 'number' ? target : pod.namedPorts.get(target);
    // A pod without the named port is not an endpoint of this port (as in Kubernetes).
    if (targetPort === undefined) continue;
    endpoints.push({ pod: pod.name, ip: pod.ip, targetPort });
  }
  endpoints.sort((a, b) => a.pod.localeCompare(b.pod));
  return { name: port.name, port: port.port, protocol: port.protocol ?? 'TCP', targetPort: target, endpoints };
}

function chainName(prefix: string, id: string): string {
  // Chain names are limited to 28 characters: prefix (13) + 12 hex.
  return prefix + createHash('sha256').update(id).digest('hex').slice(0, 12).toUpperCase();
}

/**
 * iptables-restore input (for `--noflush`) that makes the node's nat table DNAT every service
 * port to its endpoints, and its filter table refuse ClusterIP traffic that matched nothing (a
 * port without endpoints answers "connection refused" at once, as with kube-proxy). `saved` is
 * the node's current `iptables-save` output: jumps that exist are not added twice, and chains of
 * services that are gone are deleted.
 */
export function serviceRules(services: readonly ServiceView[], saved: string): string {
  const chains = new Set<string>();
  const nat: string[] = [];
  const filter: string[] = [];
  const vips = new Set<string>();
  for (const svc of services) {
    if (svc.clusterIP === undefined) continue;
    vips.add(svc.clusterIP);
    for (const port of svc.ports) {
      const proto = port.protocol.toLowerCase();
      const id = `${svc.namespace}/${svc.name}:${port.port}/${proto}`;
      if (port.endpoints.length === 0) continue;
      const svcChain = chainName(SVC_PREFIX, id);
      chains.add(svcChain);
      nat.push(
        `-A ${CHAIN_SERVICES} -d ${svc.clusterIP}/32 -p ${proto} -m ${proto} --dport ${port.port} ` +
          `-m comment --comment ${comment(id)} -j ${svcChain}`,
      );
      const n = port.endpoints.length;
      port.endpoints.forEach((ep, i) => {
        const sepChain = chainName(SEP_PREFIX, `${id}->${ep.ip}:${ep.targetPort}`);
        chains.add(sepChain);
        // Rule i of n takes 1/(n-i) of what reaches it: every endpoint gets 1/n overall.
        const pick = i < n - 1 ? `-m statistic --mode random --probability ${(1 / (n - i)).toFixed(10)} ` : '';
        nat.push(`-A ${svcChain} ${pick}-m comment --comment ${comment(`${id} -> ${ep.pod}`)} -j ${sepChain}`);
        // A pod that reaches itself through its service would see its own address as the source.
        nat.push(`-A ${sepChain} -s ${ep.ip}/32 -j MARK --set-xmark ${MASQ_MARK}`);
        nat.push(`-A ${sepChain} -p ${proto} -m ${proto} -j DNAT --to-destination ${ep.ip}:${ep.targetPort}`);
      });
    }
  }
  for (const vip of [...vips].sort()) {
    filter.push(`-A ${CHAIN_SERVICES} -d ${vip}/32 -m comment --comment "no-endpoint" -j REJECT --reject-with icmp-port-unreachable`);
  }

  const existing = parseSaved(saved);
  const natStale = [...(existing.get('nat')?.chains ?? [])].filter(
    (c) => (c.startsWith(SVC_PREFIX) || c.startsWith(SEP_PREFIX)) && !chains.has(c),
  );
  const out: string[] = ['*nat', `:${CHAIN_SERVICES} - [0:0]`, `:${CHAIN_POSTROUTING} - [0:0]`];
  for (const c of [...chains].sort()) out.push(`:${c} - [0:0]`);
  for (const c of natStale.sort()) out.push(`:${c} - [0:0]`);
  const natRules = existing.get('nat')?.rules ?? new Set<string>();
  for (const jump of [
    `-A PREROUTING -j ${CHAIN_SERVICES}`,
    `-A OUTPUT -j ${CHAIN_SERVICES}`,
    `-A POSTROUTING -j ${CHAIN_POSTROUTING}`,
  ]) {
    if (!natRules.has(jump)) out.push(jump);
  }
  out.push(`-A ${CHAIN_POSTROUTING} -m mark --mark ${MASQ_MARK} -j MASQUERADE`);
  out.push(...nat);
  for (const c of natStale) out.push(`-X ${c}`);
  out.push('COMMIT', '*filter', `:${CHAIN_SERVICES} - [0:0]`);
  const filterRules = existing.get('filter')?.rules ?? new Set<string>();
  for (const jump of [`-A FORWARD -j ${CHAIN_SERVICES}`, `-A OUTPUT -j ${CHAIN_SERVICES}`]) {
    if (!filterRules.has(jump)) out.push(jump);
  }
  out.push(...filter, 'COMMIT', '');
  return out.join('\n');
}

function comment(text: string): string {
  // Names are DNS labels and ports numbers: nothing to escape but the quotes around it.
  return `"${text.replace(/"/g, '')}"`;
}

/** table -> its chains and rules, from `iptables-save` output. */
function parseSaved(saved: string): Map<string, { chains: Set<string>; rules: Set<string> }> {
  const tables = new Map<string, { chains: Set<string>; rules: Set<string> }>();
  let current: { chains: Set<string>; rules: Set<string> } | undefined;
  for (const raw of saved.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      current = { chains: new Set(), rules: new Set() };
      tables.set(line.slice(1), current);
    } else if (current === undefined) {
      continue;
    } else if (line.startsWith(':')) {
      current.chains.add(line.slice(1).split(' ')[0]!);
    } else if (line.startsWith('-A ')) {
      current.rules.add(line);
    }
  }
  return tables;
}

// ---------------------------------------------------------------------------------------------
// Names


/**
 * /etc/hosts of one pod: services of its own namespace by `name`, `name.ns` and the full name;
 * services of other namespaces by the two longer forms (a resolver's search path, spelled out).
 */
export function hostsFile(
  lab: string,
  pod: { name: string; namespace: string; ip: string },
  services: readonly { name: string; namespace: string; clusterIP: string | undefined }[],
): string {
  const lines = [
    `# Written by weft lab ${lab} for pod ${pod.namespace}/${pod.name}; rewritten when services change.`,
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    `${pod.ip}\t${pod.name}`,
  ];
  const sorted = [...services].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  for (const svc of sorted) {
    if (svc.clusterIP === undefined) continue;
    const full = `${svc.name}.${svc.namespace}.svc.${DEFAULT_CLUSTER_DOMAIN}`;
    const names = svc.namespace === pod.namespace ? [svc.name, `${svc.name}.${svc.namespace}`, full] : [`${svc.name}.${svc.namespace}`, full];
    lines.push(`${svc.clusterIP}\t${names.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Names come from the hosts file only. The nameserver is the pod's own loopback, where nothing
 * listens: an unknown name fails at once and no query ever leaves the lab.
 */
export const RESOLV_CONF =
  '# Written by weft lab: service names are in /etc/hosts; no DNS server is reachable from the lab.\n' +
  'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n';

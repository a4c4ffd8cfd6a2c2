/**
 * The lab's wiring, Calico-style (see the shared contract):
 *   fabric netns: bridge br0; one port per node; a route to each node's pod CIDR via the node
 *   node netns:   eth0 (fabric IP, uplink to br0); ip_forward; a /32 route per local pod; a route
 *                 to each other node's pod CIDR via its fabric IP; the service range on eth0
 *   pod netns:    eth0 198.18.i.n/32; 169.254.1.1 on-link and default via it; the node end of
 *                 the veth answers ARP for it (proxy_arp)
 * Links are created straight into their namespaces (`ip link add ... netns X`): nothing is ever
 * created in the machine's own namespace. Independent namespaces are configured in parallel with
 * one `ip -batch` each.
 */
import { LAB_CA_IP } from './ca.js';
import { readdir } from 'node:fs/promises';
import { NETNS_DIR } from './paths.js';
import { POD_GATEWAY, SERVICE_CIDR } from './addressing.js';
import { inNetns, ipBatch, run } from './run.js';
import type { NodeState, PodState } from './state.js';

const BRIDGE = 'br0';

/** Names in /run/netns (what `ip netns list` shows). */
export async function listNetns(): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** One `ip -batch` for all new namespaces. */
export async function addNetns(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await ipBatch(undefined, names.map((n) => `netns add ${n}`), `create network namespaces`);
}

export async function deleteNetns(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  // -force: go on past one that is already gone; whatever is left is reported by the caller.
  await run('ip', ['-force', '-batch', '-'], {
    input: names.map((n) => `netns del ${n}`).join('\n') + '\n',
    allowFailure: true,
    step: 'delete network namespaces',
  });
}

export async function createFabric(netns: string): Promise<void> {
  await ipBatch(undefined, [`link add ${BRIDGE} netns ${netns} type bridge`], 'create the fabric bridge');
  // The bridge's own address is where the lab CA listens (see ca.ts).
  await ipBatch(netns, ['link set lo up', `link set ${BRIDGE} up`, `addr add ${LAB_CA_IP}/24 dev ${BRIDGE}`], 'configure the fabric');
}

function uplinkName(node: NodeState): string {
  return `n${node.index}`;
}

/**
 * Wires new nodes to the fabric and gives every node (old and new) a route to every other
 * node's pod CIDR (`route replace`: running it again changes nothing).
 */
export async function wireNodes(fabric: string, fresh: readonly NodeState[], all: readonly NodeState[]): Promise<void> {
  if (fresh.length > 0) {
    await ipBatch(
      undefined,
      fresh.map((n) => `link add eth0 netns ${n.netns} type veth peer name ${uplinkName(n)} netns ${fabric}`),
      'create the node uplinks',
    );
    await ipBatch(
      fabric,
      fresh.flatMap((n) => [`link set ${uplinkName(n)} master ${BRIDGE}`, `link set ${uplinkName(n)} up`]),
      'attach the nodes to the fabric bridge',
    );
  }
  // The fabric is the control-plane host (CA, API server, Prometheus): it routes each node's pod
  // CIDR to that node, so pods reach it (the `kubernetes` Service) and its answers come back.
  await ipBatch(fabric, all.map((n) => `route replace ${n.podCIDR} via ${n.fabricIP} dev ${BRIDGE}`), 'route the pod CIDRs in the fabric');
  const freshNames = new Set(fresh.map((n) => n.name));
  await Promise.all(
    all.map(async (node) => {
      const lines: string[] = [];
      if (freshNames.has(node.name)) {
        lines.push(
          'link set lo up',
          `addr add ${node.fabricIP}/24 dev eth0`,
          'link set eth0 up',
          // Pods ARP for their gateway; proxy_arp answers only for an address routed elsewhere.
          `route replace ${POD_GATEWAY}/32 dev eth0`,
          // Traffic from the node itself to a ClusterIP needs a route before OUTPUT DNATs it.
          `route replace ${SERVICE_CIDR} dev eth0 src ${node.fabricIP}`,
        );
      }
      for (const other of all) {
        if (other.name !== node.name) lines.push(`route replace ${other.podCIDR} via ${other.fabricIP} dev eth0`);
      }
      if (lines.length > 0) await ipBatch(node.netns, lines, `configure node ${node.name}`);
      if (freshNames.has(node.name)) {
        await inNetns(node.netns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { step: `enable forwarding on node ${node.name}` });
      }
    }),
  );
}

export function hostVethName(host: number): string {
  return `pod${host}`;
}

/** veth pairs, addresses, routes and proxy_arp for new pods (their namespaces exist). */
export async function wirePods(pods: readonly PodState[], nodes: ReadonlyMap<string, NodeState>): Promise<void> {
  if (pods.length === 0) return;
  await ipBatch(
    undefined,
    pods.map((p) => `link add ${p.hostVeth} netns ${nodes.get(p.node)!.netns} type veth peer name eth0 netns ${p.netns}`),
    'create the pod veths',
  );
  const byNode = new Map<string, PodState[]>();
  for (const p of pods) byNode.set(p.node, [...(byNode.get(p.node) ?? []), p]);
  await Promise.all([
    ...pods.map((p) =>
      ipBatch(
        p.netns,
        [
          'link set lo up',
          `addr add ${p.ip}/32 dev eth0`,
          'link set eth0 up',
          `route add ${POD_GATEWAY} dev eth0 scope link`,
          `route add default via ${POD_GATEWAY} dev eth0`,
        ],
        `configure pod ${p.namespace}/${p.name}`,
      ),
    ),
    ...[...byNode].map(async ([nodeName, list]) => {
      const node = nodes.get(nodeName)!;
      await ipBatch(
        node.netns,
        list.flatMap((p) => [`link set ${p.hostVeth} up`, `route replace ${p.ip}/32 dev ${p.hostVeth}`]),
        `route the new pods of node ${nodeName}`,
      );
      await inNetns(
        node.netns,
        'sysctl',
        // proxy_delay 0: the kernel otherwise delays proxy ARP answers by up to 0.8 s (Calico does the same).
        ['-q', '-w', ...list.flatMap((p) => [`net.ipv4.conf.${p.hostVeth}.proxy_arp=1`, `net.ipv4.neigh.${p.hostVeth}.proxy_delay=0`])],
        { step: `enable proxy_arp for the pods of node ${nodeName}` },
      );
    }),
  ]);
}

/**
 * Deletes the pod's veth pair (synchronously, from the node side: a deleted namespace frees its
 * links later, in the kernel's own time, and the name may be needed again at once) and its
 * namespace. Its processes must be stopped first.
 */
export async function unwirePod(pod: PodState, node: NodeState | undefined): Promise<void> {
  if (node !== undefined) {
    await run('ip', ['-n', node.netns, 'link', 'del', pod.hostVeth], { allowFailure: true, step: `delete the veth of ${pod.name}` });
  }
  await deleteNetns([pod.netns]);
}

/** Current nat and filter tables of a node, then the new service rules on top (`--noflush`). */
export async function saveIptables(netns: string): Promise<string> {
  const r = await inNetns(netns, 'iptables-save', [], { step: `read the iptables rules of ${netns}` });
  return r.stdout;
}

export async function restoreIptables(netns: string, rules: string): Promise<void> {
  await inNetns(netns, 'iptables-restore', ['--noflush'], { input: rules, step: `install the service rules in ${netns}` });
}

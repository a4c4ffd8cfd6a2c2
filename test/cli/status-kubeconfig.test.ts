/**
 * `weft status --kubeconfig F` reads each agent pod's admin API through the API server with
 * pods/portforward (WebSocket, as istioctl ztunnel-config does), against the lab's API server
 * (a test double). The pod end of the forward is a stand-in admin API on 127.0.0.1:15000 inside
 * a network namespace per agent pod (as the node's namespace of a hostNetwork agent would be):
 * what is tested is the transport and the per-agent views, not an agent.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { closeNetns, createTcpSocket, openNetns } from '../../native/index.js';
import { createTestNetns } from '../helpers/netns.js';
import { installWeft, WEFT_MAIN, type KubeInstall } from '../helpers/kube-install.js';

const execFileAsync = promisify(execFile);

async function weft(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [WEFT_MAIN, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** An admin API as the agent of `node` would answer (the shapes of agent/admin/server.ts). */
function standInAdmin(node: string): http.Server {
  return http.createServer((req, res) => {
    const body =
      req.url === '/config_dump'
        ? { node, generation: 1, workloads: [{ key: `shop/cart-${node}`, name: `cart-${node}`, namespace: 'shop', node, ip: '198.18.0.5', identity: 'spiffe://cluster.local/ns/shop/sa/cart', inMesh: true, captured: true }], services: [], policies: [], certificates: [] }
        : req.url === '/connections'
          ? { open: [], totals: [] }
          : undefined;
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { error: 'no such endpoint' }));
  });
}

describe('weft status --kubeconfig (issue 9, build point 7)', () => {
  let k: KubeInstall;
  const admins = new Map<string, http.Server>();
  const netnsOf = new Map<string, ReturnType<typeof createTestNetns>>();
  const forwarded: string[] = [];
  before(async () => {
    k = await installWeft();
    for (const node of ['node-a', 'node-b']) {
      const pod = `weft-agent-${node}`;
      await k.kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Pod\nmetadata: {name: ${pod}, namespace: weft-system, labels: {app: weft-agent}}\nspec: {nodeName: ${node}, serviceAccountName: weft-agent, hostNetwork: true, containers: [{name: agent, image: weft}]}\n`);
      await k.kubectl(['-n', 'weft-system', 'patch', 'pod', pod, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Running"}}']);
      const netns = createTestNetns(`weft-deploy-status-${node}`);
      netnsOf.set(pod, netns);
      const server = standInAdmin(node);
      const fd = openNetns(netns.path);
      try {
        server.listen({ fd: createTcpSocket({ netnsFd: fd, reuseAddress: true, bind: { address: '127.0.0.1', port: 15000 }, listenBacklog: 16 }) });
        await once(server, 'listening');
      } finally {
        closeNetns(fd);
      }
      admins.set(pod, server);
    }
    // As the kubelet: a hostNetwork pod's port is its node's localhost (here: a namespace per node).
    k.api.setPodNetworkResolver((pod) => {
      const name = pod.metadata.name ?? '';
      const netns = netnsOf.get(name);
      if (netns !== undefined) forwarded.push(name);
      return netns?.path;
    });
  });
  after(async () => {
    for (const s of admins.values()) await new Promise((r) => s.close(r));
    for (const n of netnsOf.values()) n.remove();
    await k?.close();
  });

  it('reads every running agent pod through pods/portforward to its admin port', async () => {
    const { code, stdout, stderr } = await weft(['status', 'workloads', '--kubeconfig', k.admin, '--json']);
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout) as { agent: string; workloads: { name: string }[] }[];
    assert.deepEqual(out.map((a) => a.agent).sort(), ['pod weft-agent-node-a (node node-a)', 'pod weft-agent-node-b (node node-b)']);
    for (const a of out) assert.equal(a.workloads[0]!.name, `cart-${a.agent.includes('node-a') ? 'node-a' : 'node-b'}`);
    assert.deepEqual([...new Set(forwarded)].sort(), ['weft-agent-node-a', 'weft-agent-node-b'], 'both agents reached through pods/portforward');
    const table = await weft(['status', 'connections', '--kubeconfig', k.admin]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /# pod weft-agent-node-a \(node node-a\)/);
  });

  it('a user without pods/portforward gets the API\'s refusal, not a hang', async () => {
    // The agent's own account may list pods but not port-forward.
    const { code, stderr } = await weft(['status', 'workloads', '--kubeconfig', await k.kubeconfigFor('weft-agent')]);
    assert.equal(code, 1);
    assert.match(stderr, /403/);
  });

  it('says when no agent pod runs', async () => {
    const { code, stderr } = await weft(['status', 'workloads', '--kubeconfig', k.admin, '--selector', 'app=nothing']);
    assert.equal(code, 1);
    assert.match(stderr, /no running agent pod .*WEFT_ERR_KUBE_REQUEST/);
  });
});

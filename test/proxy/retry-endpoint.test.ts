/**
 * Point 7 of issue 10: a connect that fails before any byte moved is tried once more on another
 * ready endpoint. Under pod churn the agent used to reset the client at once (48 of 3000 meshed
 * requests failed). Here the service `server` has two endpoints: the server pod, and a second
 * pod whose address refuses every connection (a REJECT rule in the client pod, standing in for a
 * pod that just went). Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inNs } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';
import { setupTwoPods, type TwoPods } from '../helpers/two-pods.js';

const GONE_IP = '198.18.233.4';
let t: TwoPods;

before(async () => {
  t = await setupTwoPods('secretry', 233);
  // A second endpoint of `server` (outside the mesh: plain connects) whose connects are refused.
  t.writeFile('gone.yaml', `apiVersion: v1\nkind: Pod\nmetadata:\n  name: server-gone\n  namespace: shop\n  labels:\n    app: server\n    weft.dev/mesh: disabled\nspec:\n  nodeName: node-2\n  serviceAccountName: server\n  containers:\n  - name: main\n    command: [sleep, infinity]\nstatus:\n  phase: Running\n  podIP: ${GONE_IP}\n`);
  inNs(t.A, 'iptables', ['-A', 'OUTPUT', '-d', `${GONE_IP}/32`, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset']);
  await waitFor(() => (t.agent.model.serviceByVip(t.VIP)?.ports.get(80)?.length ?? 0) === 2, 'two endpoints for the service');
});
after(() => t?.cleanup());

test('a refused connect to one endpoint is retried on the other; the client never sees it', async () => {
  for (let i = 0; i < 16; i++) assert.equal(await t.request(t.VIP, 80, `r${i}`), `${t.IP_A}|r${i}`);
  const retries = t.logs.filter((l) => l.msg === 'outbound: connect failed before any byte; trying another endpoint');
  assert.ok(retries.length > 0, 'the refusing endpoint was picked and retried at least once in 16 tries');
  assert.equal(retries[0]!.failed, `${GONE_IP}:9080`);
  await waitFor(() => t.agent.inputs.connections.openConnections().length === 0, 'no open records');
});

test('the same over HBONE: a meshed endpoint whose 15008 refuses is retried on the other', async () => {
  t.writeFile('gone.yaml', `apiVersion: v1\nkind: Pod\nmetadata:\n  name: server-gone\n  namespace: shop\n  labels:\n    app: server\nspec:\n  nodeName: node-2\n  serviceAccountName: server\n  containers:\n  - name: main\n    command: [sleep, infinity]\nstatus:\n  phase: Running\n  podIP: ${GONE_IP}\n`);
  await waitFor(() => t.agent.model.workloadByIp(GONE_IP)?.inMesh === true, 'the second endpoint in the mesh');
  const since = t.logs.length;
  for (let i = 0; i < 16; i++) assert.equal(await t.request(t.VIP, 80, `h${i}`), `${t.IP_A}|h${i}`);
  const retries = t.logs.slice(since).filter((l) => l.msg === 'outbound: connect failed before any byte; trying another endpoint');
  assert.ok(retries.length > 0, 'the refusing endpoint was picked and retried at least once in 16 tries');
  assert.match(String(retries[0]!.reason), /TCP connect to 198\.18\.233\.4:15008 failed/);
  await waitFor(() => t.agent.inputs.connections.openConnections().length === 0, 'no open records');
});

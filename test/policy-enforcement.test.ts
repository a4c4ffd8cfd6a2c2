/**
 * L4 enforcement in the agent's inbound path, in-process on two pod namespaces (plaintext
 * sources: ipBlocks and ports rules, STRICT/PERMISSIVE, invalid policies, tightening a policy
 * while a connection is open). Principal-based rules over HBONE are in the lab suite.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { waitFor } from './helpers/wait.js';
import { setupTwoPods, type TwoPods } from './helpers/two-pods.js';

let t: TwoPods;

before(async () => {
  t = await setupTwoPods('pol', 251);
});
after(() => t?.cleanup());

function authz(name: string, action: string, rules: string): string {
  return `apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  selector:\n    matchLabels:\n      app: server\n  action: ${action}\n  rules:\n${rules}`;
}

async function policyGeneration(at: number): Promise<void> {
  await waitFor(() => t.agent.inputs.policy.generation > at, 'the agent applied the policy change');
}

function refused(host: string, port: number): Promise<boolean> {
  return t.request(host, port, 'x').then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET',
  );
}

async function decisions(result: 'allow' | 'deny'): Promise<number> {
  const metric = await t.agent.metrics.policyDecisions.get();
  return metric.values.filter((v) => v.labels['result'] === result).reduce((n, v) => n + v.value, 0);
}

test('without policies, inbound connections are allowed', async () => {
  assert.equal(await t.request(t.IP_B, 9080, 'hi'), `${t.IP_A}|hi`);
});

test('an ALLOW policy admits a matching ipBlock and refuses others; refusals are counted and logged with the policy', async () => {
  let gen = t.agent.inputs.policy.generation;
  t.writeFile('p1.yaml', authz('only-other', 'ALLOW', `  - from:\n    - source:\n        ipBlocks: ["198.18.99.0/24"]\n`));
  await policyGeneration(gen);
  const denied = await decisions('deny');
  assert.equal(await refused(t.IP_B, 9080), true, 'client outside the ipBlock is refused');
  assert.equal(await decisions('deny'), denied + 1);
  const line = await waitFor(() => t.logs.find((l) => l['decision'] === 'deny' && l['policy'] === undefined && l['reason'] === 'no-allow-match'), 'deny log line');
  assert.equal(line['dst_workload'], 'shop/server');

  gen = t.agent.inputs.policy.generation;
  t.writeFile('p1.yaml', authz('only-client', 'ALLOW', `  - from:\n    - source:\n        ipBlocks: ["${t.IP_A}/32"]\n`));
  await policyGeneration(gen);
  assert.equal(await t.request(t.IP_B, 9080, 'ok'), `${t.IP_A}|ok`);
});

test('a DENY policy beats an ALLOW, and names itself in the log', async () => {
  const gen = t.agent.inputs.policy.generation;
  t.writeFile('p2.yaml', authz('deny-port', 'DENY', `  - to:\n    - operation:\n        ports: ["9080"]\n`));
  await policyGeneration(gen);
  assert.equal(await refused(t.IP_B, 9080), true);
  await waitFor(() => t.logs.find((l) => l['decision'] === 'deny' && l['policy'] === 'shop/deny-port'), 'deny log naming shop/deny-port');
  const gen2 = t.agent.inputs.policy.generation;
  t.removeFile('p2.yaml');
  await policyGeneration(gen2);
  assert.equal(await t.request(t.IP_B, 9080, 'back'), `${t.IP_A}|back`);
});

test('a policy that fails validation is refused naming the field, and the previous version stays in force', async () => {
  const gen = t.agent.inputs.policy.generation;
  const logsBefore = t.logs.length;
  t.writeFile('p1.yaml', authz('only-client', 'ALLOW', `  - from:\n    - source:\n        ipBlocks: ["not-a-cidr"]\n`));
  const line = await waitFor(() => t.logs.slice(logsBefore).find((l) => String(l['msg']).startsWith('policy AuthorizationPolicy/shop/only-client refused')), 'refusal log line');
  assert.match(String(line['msg']), /ipBlocks\[0\]/);
  assert.equal(t.agent.inputs.policy.generation, gen, 'effective policies unchanged');
  // The previous version (allow only the client's IP) still admits the client.
  assert.equal(await t.request(t.IP_B, 9080, 'still'), `${t.IP_A}|still`);
});

test('tightening a policy while a connection is open closes that connection', async () => {
  const socket = t.open(t.IP_B, 9080);
  await once(socket, 'connect');
  socket.write('first');
  await waitFor(() => t.agent.inputs.connections.openConnections().some((c) => c.direction === 'inbound'), 'inbound connection open');
  // The agent aborts the connection: the client sees a reset, then the close.
  let sawReset = false;
  socket.on('error', (err: NodeJS.ErrnoException) => (sawReset = err.code === 'ECONNRESET'));
  const closed = new Promise((resolve) => socket.on('close', resolve));
  const gen = t.agent.inputs.policy.generation;
  t.writeFile('p1.yaml', authz('only-client', 'ALLOW', `  - from:\n    - source:\n        ipBlocks: ["198.18.99.0/24"]\n`));
  await policyGeneration(gen);
  try {
    await closed;
    assert.equal(sawReset, true, 'the client saw a reset');
    await waitFor(() => t.logs.find((l) => l['msg'] === 'open connection closed: policy no longer allows it'), 'log of the closed connection');
  } finally {
    const gen2 = t.agent.inputs.policy.generation;
    t.removeFile('p1.yaml');
    await policyGeneration(gen2);
  }
});

test('STRICT refuses plaintext from outside the mesh and admits mutual TLS; PERMISSIVE lets plaintext in as unauthenticated', async () => {
  const peer = (mode: string) => `apiVersion: weft.dev/v1alpha1\nkind: PeerAuthentication\nmetadata:\n  name: default\n  namespace: shop\nspec:\n  mtls:\n    mode: ${mode}\n`;
  let gen = t.agent.inputs.policy.generation;
  t.writeFile('peer.yaml', peer('STRICT'));
  await policyGeneration(gen);
  // The meshed client reaches the server over HBONE: allowed, with its identity.
  const before = t.logs.length;
  assert.equal(await t.request(t.IP_B, 9080, 'mtls'), `${t.IP_A}|mtls`);
  const viaHbone = await waitFor(() => t.logs.slice(before).find((l) => l['msg'] === 'connection closed' && l['direction'] === 'inbound' && l['bytes_from_client'] === 4), 'access log of the mTLS connection');
  assert.equal(viaHbone['mtls'], true);
  assert.equal(viaHbone['src_principal'], 'spiffe://cluster.local/ns/shop/sa/client');

  // The client pod opts out of the mesh: its traffic now arrives in plaintext.
  t.writePods({ 'weft.dev/mesh': 'disabled' });
  await waitFor(() => t.agent.captured.size === 1, 'client pod released');
  assert.equal(await refused(t.IP_B, 9080), true, 'plaintext refused under STRICT');
  await waitFor(() => t.logs.find((l) => l['decision'] === 'deny' && l['reason'] === 'mtls-required'), 'mtls-required log line');

  gen = t.agent.inputs.policy.generation;
  t.writeFile('peer.yaml', peer('PERMISSIVE'));
  await policyGeneration(gen);
  const since = t.logs.length;
  assert.equal(await t.request(t.IP_B, 9080, 'plain'), `${t.IP_A}|plain`);
  const record = await waitFor(() => t.logs.slice(since).find((l) => l['msg'] === 'connection closed' && l['direction'] === 'inbound' && l['bytes_from_client'] === 5), 'access log of the plaintext connection');
  assert.equal(record['mtls'], false);
  assert.equal(record['src_principal'], undefined);
  t.writePods();
  await waitFor(() => t.agent.captured.size === 2, 'client pod captured again');
});
